"""The committed Pub/Sub API stubs are exactly what grpcio-tools makes of the vendored proto."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
GENERATED = ("pubsub_api_pb2.py", "pubsub_api_pb2.pyi", "pubsub_api_pb2_grpc.py")


def test_committed_stubs_match_the_vendored_proto(tmp_path: Path) -> None:
    protoc = pytest.importorskip("grpc_tools.protoc", reason="grpcio-tools (the dev extra) regenerates them")
    package = tmp_path / "pubsub_api"
    package.mkdir()
    shutil.copy(SRC / "pubsub_api" / "pubsub_api.proto", package / "pubsub_api.proto")
    args = [
        "protoc",
        f"-I{tmp_path}",
        f"--python_out={tmp_path}",
        f"--pyi_out={tmp_path}",
        f"--grpc_python_out={tmp_path}",
        str(package / "pubsub_api.proto"),
    ]
    assert protoc.main(args) == 0
    for name in GENERATED:
        fresh = (package / name).read_text()
        committed = (SRC / "pubsub_api" / name).read_text()
        assert committed == fresh, f"src/pubsub_api/{name} differs from a fresh one: run make pubsub-stubs"


def test_the_stubs_import_and_name_the_service() -> None:
    from pubsub_api import pubsub_api_pb2, pubsub_api_pb2_grpc

    request = pubsub_api_pb2.FetchRequest(topic_name="/data/OpportunityChangeEvent", num_requested=10)
    assert pubsub_api_pb2.FetchRequest.FromString(request.SerializeToString()) == request
    assert hasattr(pubsub_api_pb2_grpc, "PubSubServicer")
    assert hasattr(pubsub_api_pb2_grpc, "add_PubSubServicer_to_server")
