"""Meter configuration files: what they say, and clear errors when they are wrong."""

from __future__ import annotations

import re
import stat
import uuid
from pathlib import Path

import pytest

from device_sim.config import (
    BrokerOptions,
    ConfigError,
    MeterEntry,
    load_configs,
    load_file,
)
from device_sim.config_writer import write_fleet, write_meter_files
from device_sim.plan import MeterFlags, broker_plan, meter_plan, seed_for
from device_sim.timeparse import parse_duration

A = uuid.UUID("5c2494a3-0000-4000-8000-00000000000a")
B = uuid.UUID("5c2494a3-0000-4000-8000-00000000000b")

FLEET = f"""
[broker]
host = "mqtt.example.net"
port = 8883
tls = true
ca_file = "ca.pem"

[defaults]
interval_s = 300
source = "replay"
replay_file = "data/sensor.csv"

[[meters]]
device_id = "{A}"
password = "pa"
name = "flat 1"

[[meters]]
device_id = "{B}"
password = "pb"
interval_s = 60
format = "classic"
source = "profile"
seed = 42
timezone = "Europe/Paris"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_fleet_file_gives_each_meter_its_defaults_and_its_own_keys(tmp_path: Path) -> None:
    config = load_file(write(tmp_path, "fleet.toml", FLEET))
    assert config.broker == BrokerOptions("mqtt.example.net", 8883, True, tmp_path / "ca.pem")
    a, b = config.meters
    assert (a.device_id, a.password, a.name) == (A, "pa", "flat 1")
    assert a.options.interval_s == 300 and a.options.source == "replay"
    assert a.options.replay_file == tmp_path / "data" / "sensor.csv"  # relative to the file
    assert (b.options.interval_s, b.options.format, b.options.source) == (60, "classic", "profile")
    assert (b.options.seed, b.options.timezone) == (42, "Europe/Paris")


def test_a_meter_file_in_json_holds_one_meter(tmp_path: Path) -> None:
    path = write(tmp_path, "m.json", f'{{"device_id": "{A}", "password": "p", "interval_s": 60}}')
    (meter,) = load_file(path).meters
    assert meter.device_id == A and meter.options.interval_s == 60


def test_a_directory_loads_every_file_and_a_device_may_appear_only_once(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    write(fleet, "a.toml", f'device_id = "{A}"\npassword = "x"\n')
    write(fleet, "b.json", f'{{"device_id": "{B}", "password": "y"}}')
    write(fleet, "notes.txt", "ignored")
    assert [m.device_id for c in load_configs([fleet]) for m in c.meters] == [A, B]
    again = write(tmp_path, "again.toml", f'device_id = "{A}"\npassword = "z"\n')
    with pytest.raises(ConfigError, match=f"device {A} is already configured in .*a.toml"):
        load_configs([fleet, again])


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "f.toml",
            f'device_id = "{A}"\npasword = "x"\n',
            "unknown key 'pasword' (did you mean 'password'?)",
        ),
        ("f.toml", 'device_id = "abc"\npassword = "x"\n', "device_id: 'abc' is not a UUID"),
        ("f.toml", f'device_id = "{A}"\n', "f.toml: password is missing"),
        (
            "f.toml",
            f'device_id = "{A}"\npassword = "x"\ninterval_s = "10m"\n',
            "interval_s: expected int, got str '10m'",
        ),
        (
            "f.toml",
            f'device_id = "{A}"\npassword = "x"\nformat = "v2"\n',
            "format: 'v2' is not one of v1, classic",
        ),
        ("f.toml", "[[meters]]\npassword = 'x'\n", "f.toml: meters[0]: device_id is missing"),
        ("f.toml", "meters = []\n", "meters must be a non-empty list"),
        ("f.toml", "device_id = \n", "f.toml: not valid TOML: "),
        ("f.json", '{"device_id": ', "f.json: not valid JSON: "),
        ("f.yaml", "device_id: x", "unknown file type '.yaml' - use .toml or .json"),
        ("f.toml", '[broker]\nport = "1883"\n', "broker.port: expected int, got str '1883'"),
    ],
)
def test_a_bad_file_is_reported_with_where_and_what(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_configs([write(tmp_path, name, text)])


def test_a_missing_file_or_an_empty_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file"):
        load_configs([tmp_path / "nope.toml"])
    with pytest.raises(ConfigError, match=r"no \.toml or \.json files in this directory"):
        load_configs([tmp_path])


def test_provisioned_files_are_private_and_read_back(tmp_path: Path) -> None:
    meters = [MeterEntry(A, 'p"a\\ss', "sim-00001"), MeterEntry(B, "pb", None)]
    broker = BrokerOptions(host="mqtt.local", port=1883)
    fleet = tmp_path / "fleet.toml"
    write_fleet(fleet, meters, broker)
    assert stat.S_IMODE(fleet.stat().st_mode) == 0o600
    config = load_file(fleet)
    assert [(m.device_id, m.password, m.name) for m in config.meters] == [
        (A, 'p"a\\ss', "sim-00001"),
        (B, "pb", None),
    ]
    assert config.broker == broker
    paths = write_meter_files(tmp_path / "split", meters, None)
    assert [load_file(p).meters[0].device_id for p in paths] == [A, B]


def test_a_flag_wins_over_the_meter_which_wins_over_defaults(tmp_path: Path) -> None:
    a, b = load_file(write(tmp_path, "fleet.toml", FLEET)).meters
    plan = meter_plan(b, MeterFlags())
    assert (plan.interval_s, plan.format, plan.seed, plan.timezone) == (
        60,
        "classic",
        42,
        "Europe/Paris",
    )
    plan = meter_plan(b, MeterFlags(interval_s=900, seed=7), index=3)
    assert (plan.interval_s, plan.seed) == (900, 10)
    plan = meter_plan(a, MeterFlags())
    assert (plan.source, plan.format, plan.seed) == ("replay", "v1", seed_for(A))


def test_the_broker_comes_from_flags_then_environment_then_file_then_ems_up(
    tmp_path: Path,
) -> None:
    files = load_configs([write(tmp_path, "fleet.toml", FLEET)])
    assert broker_plan(files, BrokerOptions(), {}).host == "mqtt.example.net"
    env = {"EMS_SIM_HOST": "from-env", "EMS_HOST": "ems-up"}
    assert broker_plan(files, BrokerOptions(), env).host == "from-env"
    assert broker_plan(files, BrokerOptions(host="flag"), env).host == "flag"
    bare = broker_plan([], BrokerOptions(), {"EMS_HOST": "10.0.0.2", "EMS_MQTT_PORT": "1884"})
    assert (bare.host, bare.port, bare.tls) == ("10.0.0.2", 1884, False)
    with pytest.raises(ConfigError, match="EMS_SIM_PORT='x' is not a port number"):
        broker_plan([], BrokerOptions(), {"EMS_SIM_PORT": "x"})


def test_durations_read_as_people_write_them() -> None:
    assert parse_duration("1h30m").total_seconds() == 5400
    assert parse_duration("90").total_seconds() == 90
    assert parse_duration("-10m", signed=True).total_seconds() == -600
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("-10m")
