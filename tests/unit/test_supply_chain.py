"""What the image installs is hash-locked, and the encryption key stays out of its data volume."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _lock(name: str) -> dict[str, tuple[str, int]]:
    """Pinned version and number of hashes for each package in a lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current = ""
    for line in (ROOT / name).read_text().splitlines():
        if match := _PIN.match(line):
            current = canonicalize_name(match.group(1))
            pins[current] = (match.group(2), 0)
        if current and "--hash=sha256:" in line:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined; heredoc bodies left out."""
    out: list[tuple[str, str]] = []
    lines = iter((ROOT / "Dockerfile").read_text().splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\"):
            line = line[:-1] + " " + next(lines)
        keyword, _, rest = line.strip().partition(" ")
        out.append((keyword.upper(), rest))
        if heredoc := re.search(r"<<-?'?(\w+)'?", rest):
            for body in lines:
                if body.strip() == heredoc.group(1):
                    break
    return out


def _within(path: str, folder: str) -> bool:
    return PurePosixPath(folder) in (PurePosixPath(path), *PurePosixPath(path).parents)


def test_lock_pins_every_runtime_dependency_within_its_floor() -> None:
    pins = _lock("requirements.lock")
    assert all(hashes for _, hashes in pins.values()), "every pin needs its hashes"
    for spec in _pyproject()["project"]["dependencies"]:  # type: ignore[index]
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is missing from requirements.lock: relock"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"requirements.lock pins {req.name}=={pins[name][0]}, outside {req.specifier}: relock"
        )


def test_build_lock_covers_the_build_backend() -> None:
    pins = _lock("requirements-build.lock")
    assert all(hashes for _, hashes in pins.values())
    for spec in _pyproject()["build-system"]["requires"]:  # type: ignore[index]
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins and req.specifier.contains(pins[name][0]), (
            f"requirements-build.lock does not satisfy {spec}: relock it"
        )


def test_image_installs_only_hash_checked_packages_and_its_own_wheel() -> None:
    runs = [args for keyword, args in _dockerfile_instructions() if keyword == "RUN"]
    installs = [
        part.strip()
        for args in runs
        for part in args.split("&&")
        if re.search(r"\bpip\b.*\b(install|wheel)\b", part)
    ]
    assert installs
    for command in installs:
        hashed = "--require-hashes" in command and "--only-binary :all:" in command
        own = "--no-deps" in command and not re.search(r"\s-r\s", command)
        assert hashed or own, f"unchecked download in the image build: {command}"
    locks = {lock for command in installs for lock in re.findall(r"-r (\S+\.lock)", command)}
    assert locks == {"requirements.lock", "requirements-build.lock"}


def test_the_key_is_never_looked_for_in_the_data_volume() -> None:
    instructions = _dockerfile_instructions()
    final_stage = instructions[
        max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM") :
    ]
    volumes = [
        folder.strip('[]", ')
        for keyword, args in final_stage
        if keyword == "VOLUME"
        for folder in args.split()
    ]
    env = " ".join(args for keyword, args in final_stage if keyword == "ENV")
    key_file = re.search(r"AFTERGLOW_KEY_FILE=(\S+)", env)
    assert key_file and key_file.group(1).startswith("/"), "the image must name its key file"
    assert volumes and not any(_within(key_file.group(1), v) for v in volumes), (
        f"AFTERGLOW_KEY_FILE={key_file.group(1)} lies inside a data volume {volumes}"
    )
    user = [args for keyword, args in final_stage if keyword == "USER"]
    assert user and user[-1].split(":")[0] not in {"root", "0"}, "the image must not run as root"

    bot = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["bot"]
    mounted = [str(volume).split(":")[1] for volume in bot.get("volumes", [])]
    environment = bot.get("environment", {})
    assert "AFTERGLOW_KEY_FILE" not in environment or not any(
        _within(environment["AFTERGLOW_KEY_FILE"], m) for m in mounted
    ), "compose points AFTERGLOW_KEY_FILE into a volume"
    targets = [s["target"] if isinstance(s, dict) else f"/run/secrets/{s}" for s in bot["secrets"]]
    assert key_file.group(1) in targets, "compose must mount the key where the image looks"
    assert not any(_within(t, m) for t in targets for m in mounted), (
        f"compose mounts the key {targets} inside a volume {mounted}"
    )
