"""Hardening, determinism: the same photo gives the same embedding across runs, batch sizes and a
tampered optimised-graph cache.
"""

from __future__ import annotations

import numpy as np

from tests.helpers import json_rows


def test_same_photo_same_embedding_across_runs_and_batch_sizes(run, images, pipeline, tmp_path):
    paths = [str(images / n) for n in ("obama.jpg", "biden.jpg", "obama3.jpg")]
    a = np.array([r["embedding"] for r in json_rows(run("embed", *paths, "--json", "--model", "facenet").stdout)])
    b = np.array([r["embedding"] for r in json_rows(run("embed", *reversed(paths), "--json", "--model", "facenet")
                                                    .stdout)])[::-1]
    assert np.abs(a - b).max() < 1e-5
    crops = np.stack([f.crop for r in pipeline.run(paths) for f in r.faces])
    from facecli.embedding import Embedder

    one = Embedder("facenet", "cpu", batch_size=1).embed(crops)
    many = Embedder("facenet", "cpu", batch_size=64).embed(crops)
    assert np.abs(one - many).max() < 1e-5 and np.abs(one - a).max() < 1e-5


def test_a_tampered_optimised_graph_is_rebuilt(run, images, tmp_path):
    cache = tmp_path / "cache"
    env = {"FACECLI_CACHE": str(cache)}
    args = ("verify", str(images / "obama.jpg"), str(images / "obama2.jpg"), "--json", "--model", "sface")
    first = json_rows(run(*args, env=env).stdout)[0]["distance"]
    graphs = sorted((cache / "ort-optimised").glob("*.onnx"))
    assert graphs
    for graph in graphs:  # flip bytes in the weights, keep the size, then forge the stamp's file times
        data = bytearray(graph.read_bytes())
        for i in range(len(data) // 2, len(data) // 2 + 4096, 7):
            data[i] ^= 0x5A
        graph.write_bytes(bytes(data))
        stamp = graph.with_suffix(".stamp")
        from facecli.stamps import file_stamp, read_json, write_json

        write_json(stamp, {**read_json(stamp), "stat": file_stamp(graph)})
    again = run(*args, env=env)
    assert again.returncode == 0, again.stderr
    assert json_rows(again.stdout)[0]["distance"] == first
