-- A password change ends every session of that user. Each access token carries the generation of
-- its user's credentials at the time it was issued (claim "gen"); changing the password increments
-- the generation, so every earlier token stops working at once, on every portal replica, with no
-- list of tokens to revoke. A counter rather than a timestamp: token times have one-second
-- resolution, and a sign-in in the same second as the change must still work.
-- Tokens issued before this migration carry no "gen" and count as generation 0.
ALTER TABLE users ADD COLUMN token_generation integer NOT NULL DEFAULT 0;
