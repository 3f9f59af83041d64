"""Set up a network with each organisation on its own machine: only public material travels.

The three steps of docs/deployment.md, which `init_network` runs for every organisation in one
process (node/bootstrap.py):

1. `init_organization`: an organisation makes its own keys in its own folder and writes its
   public bundle (node/public_bundle.py) beside them;
2. `make_genesis`: one organisation (say the city commission) verifies every bundle and builds
   the channels' genesis blocks from them, packed with the bundles into one genesis archive;
   the SHA-256 of each block is published out of band (a signed letter, a phone call);
3. `join_genesis`: each organisation checks the archive against the published hashes, checks
   every bundle again, checks that its own bundle is unchanged and that the blocks follow from
   the bundles (it rebuilds them), and only then installs the others' public material and the
   blocks into its folder; `network up --org` then starts its own nodes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from fabric_protos.common import common_pb2, configtx_pb2
from google.protobuf.message import DecodeError

from medalliance.errors import GenesisMismatch, InvalidArgument, PreconditionFailed
from medalliance.node.bootstrap import (
    ARTIFACTS,
    CONFIG_FILE,
    NODES,
    ORGANIZATIONS,
    NetworkLayout,
    generate_organization,
    save_config,
    write_genesis_blocks,
)
from medalliance.node.config import NetworkConfig
from medalliance.node.public_bundle import (
    BUNDLE_SUFFIX,
    PublicBundle,
    bundle_file_name,
    pack,
    public_files,
    read_bundle,
    unpack,
    write_bundle,
)

GENESIS_MANIFEST = "genesis.yaml"
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024  # every organisation's bundle and the blocks
BUNDLES = "bundles"
FORMAT = 1


@dataclass(frozen=True)
class Genesis:
    """A genesis archive's bytes and the SHA-256 (hex) of each channel's genesis block."""

    archive: bytes
    block_sha256: Mapping[str, str]


def init_organization(
    config: NetworkConfig,
    organization: str,
    directory: Path,
    *,
    now: dt.datetime,
    on_progress: Callable[[str], None] | None = None,
) -> Path:
    """Generate one organisation's own material in `directory` and its public bundle; returns
    the bundle's path (`directory/<Org>.public.tar.gz`). A folder that already holds a network
    raises `PreconditionFailed`; an unknown organisation, `ConfigError` listing the others."""
    progress = on_progress or (lambda _message: None)
    org = config.organization(organization)
    bundle = directory / bundle_file_name(org)
    entries = (ORGANIZATIONS, NODES, bundle.name, CONFIG_FILE)  # network.yaml last: it marks done
    if any((directory / entry).exists() for entry in (*entries, ARTIFACTS)):
        raise PreconditionFailed(
            f"{directory} already holds a network; use a new --dir or remove it"
        )
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".init-", dir=directory))
    try:
        progress(f"generating crypto for {org.msp_id}")
        generate_organization(staging, config, org, now=now)
        save_config(staging, config)
        write_bundle(staging, config, org, staging / bundle.name)
        for entry in entries:
            os.replace(staging / entry, directory / entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"{org.name}'s public bundle is {bundle}: send it to the genesis maker")
    return bundle


def make_genesis(
    config: NetworkConfig, bundles: Sequence[tuple[str, bytes]], *, now: dt.datetime
) -> Genesis:
    """Verify one bundle per organisation (`(name for messages, bytes)`) and build the genesis
    archive. Raises `InvalidPublicBundle` for a bad bundle and `InvalidArgument` when an
    organisation's bundle is missing or given twice."""
    verified = _verified_set(config, bundles)
    timestamp_ms = int(now.timestamp() * 1000)
    blocks = _build_blocks(config, [bundle for bundle, _ in verified.values()], timestamp_ms)
    manifest = {"format": FORMAT, "network": config.name, "timestamp_ms": timestamp_ms}
    files = {GENESIS_MANIFEST: yaml.safe_dump(manifest, sort_keys=True).encode()}
    files |= {f"{ARTIFACTS}/{channel}.block": block for channel, block in blocks.items()}
    for bundle, data in verified.values():
        files[f"{BUNDLES}/{bundle.name}{BUNDLE_SUFFIX}"] = data
    return Genesis(pack(files), {ch: _sha256(block) for ch, block in blocks.items()})


def published_hashes(values: Sequence[str], config: NetworkConfig) -> dict[str, str]:
    """`--genesis-sha256` values (`CHANNEL=HEX`, or `HEX` when the network has one channel) by
    channel; `InvalidArgument` for anything else, naming the channels."""
    channels = [c.name for c in config.channels]
    out: dict[str, str] = {}
    for value in values:
        channel, _, digest = value.rpartition("=")
        if not channel and len(channels) == 1:
            channel = channels[0]
        digest = digest.strip().lower()
        if channel not in channels or len(digest) != 64 or set(digest) - set("0123456789abcdef"):
            raise InvalidArgument(
                f"--genesis-sha256 {value!r}: use CHANNEL=SHA256HEX; channels: {', '.join(channels)}"
            )
        out[channel] = digest
    missing = [c for c in channels if c not in out]
    if missing:
        raise InvalidArgument(
            f"no published genesis hash for channel(s) {', '.join(missing)}: pass "
            "--genesis-sha256 CHANNEL=HEX as the genesis maker published it (out of band)"
        )
    return out


def join_genesis(
    layout: NetworkLayout, organization: str, archive: bytes, published: Mapping[str, str]
) -> dict[str, str]:
    """Check a genesis archive and install it into `organization`'s folder; returns the block
    hashes. Raises `GenesisMismatch` (and writes nothing) when a block's hash differs from the
    published one, the archive's bundle of this organisation is not its own, or a block does not
    follow from the bundles; `InvalidPublicBundle` for a bad bundle inside."""
    config = layout.config
    org = config.organization(organization)
    if any(layout.genesis_block_path(c.name).exists() for c in config.channels):
        raise PreconditionFailed(
            f"{layout.directory} already holds genesis blocks; this organisation has joined"
        )
    if not (layout.user_msp_dir(org.msp_id, "Admin") / "keystore").is_dir():
        raise PreconditionFailed(
            f"{layout.directory} holds no keys of {org.name}; pass the organisation this folder "
            "was made for by `network init --org`"
        )
    files = unpack(archive, "the genesis archive", MAX_ARCHIVE_BYTES)
    timestamp_ms = _genesis_manifest(files.get(GENESIS_MANIFEST), config)
    blocks = {}
    for spec in config.channels:
        block = files.get(f"{ARTIFACTS}/{spec.name}.block")
        if block is None:
            raise GenesisMismatch(f"the genesis archive has no block of channel {spec.name}")
        if _sha256(block) != published[spec.name]:
            raise GenesisMismatch(
                f"channel {spec.name}'s genesis block has SHA-256 {_sha256(block)}, not the "
                "published one: it was changed on the way; do not start, ask for it again"
            )
        blocks[spec.name] = block
    bundled = [(name, data) for name, data in files.items() if name.startswith(f"{BUNDLES}/")]
    verified = {msp_id: bundle for msp_id, (bundle, _) in _verified_set(config, bundled).items()}
    own = public_files(layout.directory, org)
    if dict(verified[org.msp_id].files) != own:
        raise GenesisMismatch(
            f"the genesis archive carries a bundle for {org.name} that is not the one in "
            f"{layout.directory}; do not start: the genesis maker used other keys for you"
        )
    rebuilt = _build_blocks(config, verified.values(), timestamp_ms)
    for channel, block in blocks.items():
        if _config_of(block) != _config_of(rebuilt[channel]):
            raise GenesisMismatch(
                f"channel {channel}'s genesis block does not follow from the public bundles and "
                "network.yaml: it was tampered with, or made from another network.yaml"
            )
    for msp_id, bundle in verified.items():
        if msp_id != org.msp_id:
            bundle.install(layout.directory)
    (layout.directory / ARTIFACTS).mkdir(exist_ok=True)
    for channel, block in blocks.items():  # last: the blocks mark a joined folder
        path = layout.genesis_block_path(channel)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(block)
        partial.replace(path)
    return {channel: _sha256(block) for channel, block in blocks.items()}


def _verified_set(
    config: NetworkConfig, bundles: Iterable[tuple[str, bytes]]
) -> dict[str, tuple[PublicBundle, bytes]]:
    """Exactly one verified bundle per organisation of the config (with its bytes), by MSP id."""
    verified: dict[str, tuple[PublicBundle, bytes]] = {}
    for name, data in bundles:
        bundle = read_bundle(data, config, name)
        if bundle.msp_id in verified:
            raise InvalidArgument(
                f"two bundles name {bundle.msp_id} ({name} is the second); give each "
                "organisation's bundle once"
            )
        verified[bundle.msp_id] = (bundle, data)
    missing = [o.name for o in config.organizations if o.msp_id not in verified]
    if missing:
        raise InvalidArgument(
            f"no public bundle of {', '.join(missing)}; every organisation's bundle is needed"
        )
    return verified


def _build_blocks(
    config: NetworkConfig, bundles: Iterable[PublicBundle], timestamp_ms: int
) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="medalliance-genesis-") as tmp:
        for bundle in bundles:
            bundle.install(Path(tmp))
        return write_genesis_blocks(Path(tmp), config, timestamp_ms=timestamp_ms)


def _genesis_manifest(raw: bytes | None, config: NetworkConfig) -> int:
    manifest = yaml.safe_load(raw) if raw is not None else None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise GenesisMismatch(f"the genesis archive has no format {FORMAT} {GENESIS_MANIFEST}")
    if manifest.get("network") != config.name:
        raise GenesisMismatch(
            f"the genesis archive is of network {manifest.get('network')!r}, not {config.name!r}"
        )
    timestamp = manifest.get("timestamp_ms")
    if not isinstance(timestamp, int):
        raise GenesisMismatch(f"the genesis archive's {GENESIS_MANIFEST} has no timestamp_ms")
    return timestamp


def _config_of(block_bytes: bytes) -> tuple[int, bytes, int, bytes, configtx_pb2.ConfigEnvelope]:
    """A genesis block's channel header and configuration, compared as messages (map order in
    the bytes may differ between protobuf builds; the meaning may not)."""
    try:
        block = common_pb2.Block.FromString(block_bytes)
        envelope = common_pb2.Envelope.FromString(block.data.data[0])
        payload = common_pb2.Payload.FromString(envelope.payload)
        config = configtx_pb2.ConfigEnvelope.FromString(payload.data)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    except (DecodeError, IndexError):
        raise GenesisMismatch("a genesis block in the archive is not a Fabric block") from None
    return (
        block.header.number,
        block.header.previous_hash,
        len(block.data.data),
        header.SerializeToString(deterministic=True),
        config,
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
