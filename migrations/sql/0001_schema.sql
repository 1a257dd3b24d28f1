-- EMS schema v1: everything ARCHITECTURE.md names. Plain PostgreSQL; 0002 adds TimescaleDB
-- features when the extension is available.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      text NOT NULL CHECK (username ~ '^[A-Za-z0-9_.@-]{3,64}$'),
    name          text NOT NULL DEFAULT '',
    email         text,
    role          text NOT NULL CHECK (role IN ('admin', 'client')),
    password_hash text NOT NULL,
    time_zone     text NOT NULL DEFAULT 'UTC',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE devices (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                   text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description            text NOT NULL DEFAULT '',
    address                text NOT NULL DEFAULT '',
    max_hourly_kwh         double precision NOT NULL CHECK (max_hourly_kwh > 0),
    meter_kind             text NOT NULL DEFAULT 'cumulative'
                               CHECK (meter_kind IN ('cumulative', 'interval')),
    rated_power_w          double precision CHECK (rated_power_w IS NULL OR rated_power_w > 0),
    interval_s             integer NOT NULL DEFAULT 600 CHECK (interval_s > 0),
    owner_id               uuid REFERENCES users (id) ON DELETE SET NULL,
    credentials_rotated_at timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_owner_idx ON devices (owner_id);

-- Raw readings: immutable facts, identified by (device_id, ts). The primary key is the
-- (device_id, ts) range-scan index the rollups and the readings API use.
CREATE TABLE readings (
    device_id   uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    ts          timestamptz NOT NULL,
    energy_kwh  double precision NOT NULL,
    seq         bigint,
    power_w     double precision,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts)
);

-- Hourly energy derived from readings (re-derivable); UTC-aligned clock hours.
CREATE TABLE hourly_energy (
    device_id  uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    hour       timestamptz NOT NULL CHECK (date_trunc('hour', hour) = hour),
    energy_kwh double precision NOT NULL,
    quality    text NOT NULL CHECK (quality IN ('measured', 'estimated', 'reset', 'glitch')),
    readings   integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, hour)
);

CREATE TABLE alerts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    device_id       uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id         uuid REFERENCES users (id) ON DELETE SET NULL,
    kind            text NOT NULL
                        CHECK (kind IN ('hourly_limit', 'early_warning', 'offline', 'online')),
    hour            timestamptz,
    limit_kwh       double precision,
    value_kwh       double precision,
    projected_kwh   double precision,
    final_kwh       double precision,
    late            boolean NOT NULL DEFAULT false,
    status          text NOT NULL DEFAULT 'open'
                        CHECK (status IN ('open', 'acknowledged', 'retracted')),
    raised_at       timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by uuid REFERENCES users (id) ON DELETE SET NULL,
    CHECK ((kind IN ('hourly_limit', 'early_warning')) = (hour IS NOT NULL))
);
-- At most one alert of a kind per (device, hour), whichever hub replica sees it first.
CREATE UNIQUE INDEX alerts_device_hour_kind_key ON alerts (device_id, hour, kind)
    WHERE hour IS NOT NULL;
CREATE INDEX alerts_user_idx ON alerts (user_id, raised_at DESC);
CREATE INDEX alerts_open_idx ON alerts (raised_at DESC) WHERE status = 'open';

CREATE TABLE device_status (
    device_id  uuid PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    state      text NOT NULL CHECK (state IN ('online', 'offline', 'unknown')),
    since      timestamptz NOT NULL,
    last_seen  timestamptz,
    last_seq   bigint
);

CREATE TABLE device_status_history (
    id        bigserial PRIMARY KEY,
    device_id uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    state     text NOT NULL CHECK (state IN ('online', 'offline')),
    reason    text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_status_history_idx ON device_status_history (device_id, at DESC);

CREATE TABLE conversations (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id       uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz
);
CREATE INDEX conversations_recent_idx ON conversations (last_message_at DESC NULLS LAST);

CREATE TABLE messages (
    id              bigserial PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender_id       uuid REFERENCES users (id) ON DELETE SET NULL,
    sender_role     text NOT NULL CHECK (sender_role IN ('admin', 'client')),
    body            text NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    alert_id        uuid REFERENCES alerts (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The recipient is always "the other side" (the client, or any administrator), so one
    -- read time per message is the read state of both directions.
    read_at         timestamptz
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, id DESC);

CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_id       uuid REFERENCES users (id) ON DELETE SET NULL,
    actor_username text NOT NULL,
    action         text NOT NULL,
    entity         text NOT NULL,
    entity_id      text,
    before         jsonb,
    after          jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);

-- Messages that failed validation: never silently dropped.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    device_id   uuid,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    payload     text NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason);

-- Logged-out tokens until they would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- Failed logins, shared by every portal replica, for rate limiting per user and per address.
CREATE TABLE login_failures (
    id       bigserial PRIMARY KEY,
    username text NOT NULL,
    address  text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_user_idx ON login_failures (lower(username), at);
CREATE INDEX login_failures_addr_idx ON login_failures (address, at);
