"""cluster.yaml validated offline against Ray's own autoscaler schema."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_cluster_yaml_passes_ray_schema_validation():
    from jsonschema import ValidationError
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    validate_config(prepare_config(config))  # Ray's own schema, offline (no cloud call)
    assert config["head_node_type"] in config["available_node_types"]
    config["available_node_types"]["gpu_worker"]["resources"]["GPU"] = 0.5  # the check can fail
    with pytest.raises(ValidationError):
        validate_config(prepare_config(config))


def test_cluster_yaml_limits_inbound_access_and_holds_no_secrets():
    text = (ROOT / "cluster.yaml").read_text()
    config = yaml.safe_load(text)
    perms = config["provider"]["security_group"]["IpPermissions"]
    assert [(p["FromPort"], p["ToPort"]) for p in perms] == [(22, 22)]
    assert all(r["CidrIp"] != "0.0.0.0/0" for p in perms for r in p["IpRanges"])
    assert not any(word in text.lower() for word in ("aws_secret", "secret_access_key", "password",
                                                     "ray_auth_token=", "aws_session_token"))
    assert "--dashboard-host=127.0.0.1" in text
    # token authentication on every node, the token copied from the user's machine, not written here
    starts = [cmd for key in ("head_start_ray_commands", "worker_start_ray_commands") for cmd in config[key]
              if "ray start" in cmd]
    assert len(starts) == 2 and all(cmd.startswith("RAY_AUTH_MODE=token ray start") for cmd in starts)
    assert config["file_mounts"]["/home/ubuntu/.ray/auth_token"] == "~/.ray/auth_token"
