"""Where the time of one `facecli embed` goes: each stage and each network, on one thread.

Usage: python bench/profile_stages.py [--model fusion] [--lfw-count 300] [--lfw DIR] [--threads 1] [--rounds 3]
                                      [--backends]

Two image sets: LFW-size images (every 25th of LFW, 250x250) and
the face-recognition sdist photos (tests/images, 0.56-3.35 MP). Each stage
runs over the whole set before the next (stage-major, as a batch pipeline
would), ``--rounds`` times, and the median is kept; stages are timed on the
calling thread with ``--threads`` intra-op threads per network (1 = the cost
in core-milliseconds, what a second core can run in parallel). The embedding
networks run at the pipeline's batch size. Prints one table per set and
writes bench/results/profile_stages.json.

``--backends`` adds OpenCV's DNN module as a candidate CPU backend: each
network of the default model (and the OpenCV Zoo files they are built from)
on one thread, onnxruntime and cv2.dnn in alternation on the same real
inputs, with the cosine between their outputs.
"""

from __future__ import annotations

import json
import os

from common import add_lfw, lfw_subset, parser, photos, table, write_results
from common import median_seconds as timed


def profile(paths: list[str], model: str, rounds: int, batch: int) -> tuple[list[tuple[str, float]], dict]:
    import numpy as np

    from facecli.cli.render import face_row
    from facecli.imageio import decode, jpeg_shrink, read_bytes
    from facecli.pipeline import Pipeline
    from facecli.values import Face, ImageResult

    pipe = Pipeline(model=model, device="cpu", batch_size=batch)
    det = pipe.detector
    parts = pipe.embedder.parts
    for part in parts:  # the embedders load in the background: wait, so loading overlaps no timing
        part.session  # noqa: B018
    data = [read_bytes(p) for p in paths]
    shrinks = [jpeg_shrink(d, pipe.det_size) for d in data]
    images = [decode(d, p, s) for d, p, s in zip(data, paths, shrinks)]
    detections = [det.detect(im) for im in images]
    faces = [(im, d, s) for im, ds, s in zip(images, detections, shrinks) for d in ds]
    rows: list[tuple[str, float]] = []

    rows.append(("read + decode (reduced JPEG decode)", timed(
        lambda: [decode(read_bytes(p), p, jpeg_shrink(d, pipe.det_size)) for p, d in zip(paths, data)], rounds)))
    if det.name == "yunet":  # the network alone (a session of the same file and settings), then the rest
        from facecli.detectors.common import working_copy
        from facecli.models import spec
        from facecli.runtime import create_session

        session, name = create_session(spec("yunet"), "cpu", threads=1), spec("yunet").input["name"]
        feeds = []
        for im in images:
            work, _ = working_copy(im, det.max_side)
            h, w = work.shape[:2]
            x = np.zeros((1, 3, -(-h // 32) * 32, -(-w // 32) * 32), np.float32)
            x[0, :, :h, :w] = work[:, :, ::-1].transpose(2, 0, 1)
            feeds.append(x)
        net = timed(lambda: [session.run(None, {name: x}) for x in feeds], rounds)
        total = timed(lambda: [det.detect(im) for im in images], rounds)
        rows.append((f"{det.name} network", net))
        rows.append((f"{det.name} pre/post-processing (pad, decode, NMS)", max(total - net, 0.0)))
    else:
        rows.append((f"{det.name} detection", timed(lambda: [det.detect(im) for im in images], rounds)))

    crops = []
    for part in parts:
        def crop_all(part=part):
            return np.stack([part.crop(im, d, 1 / s) for im, d, s in faces]) if faces else None
        rows.append((f"{part.name} crop ({part.alignment})", timed(crop_all, rounds)))
        crops.append(crop_all())
    vectors = []
    for part, c in zip(parts, crops):
        if c is None:
            continue
        flip, part.flip = part.flip, False
        rows.append((f"{part.name} network + pre-processing (batch {part.batch_size})",
                     timed(lambda p=part, c=c: p.embed(c), rounds)))
        if flip:
            mirror = np.ascontiguousarray(c[:, :, ::-1])
            rows.append((f"{part.name} mirror image (flip)", timed(lambda p=part, m=mirror: p.embed(m), rounds)))
        part.flip = flip
        vectors.append(part.embed(c))
    if len(vectors) > 1:
        rows.append(("fusion (weighted concatenation)", timed(lambda: pipe.embedder.fuse(vectors), rounds)))
    fused = pipe.embedder.fuse(vectors) if vectors else np.empty((0, pipe.embedder.dim))

    def output() -> None:
        for (_, d, s), v in zip(faces, fused):
            face = Face(0, d.scaled(s), (), v)
            json.dumps(face_row(ImageResult("x", [face]), face, model, "cpu"), separators=(",", ":"))

    rows.append(("output (JSON row per face)", timed(output, rounds)))
    n_faces = len(faces)
    info = {"images": len(paths), "faces": n_faces, "provider": pipe.provider}
    return rows, info


def backends(paths: list[str], rounds: int) -> list[list[str]]:
    """onnxruntime against cv2.dnn, per network, one thread each, batch 1, on real crops and images."""
    import cv2
    import numpy as np

    from facecli.imageio import read_image
    from facecli.models import source_path, spec, verified_path
    from facecli.runtime import onnxruntime

    ort = onnxruntime()  # with its telemetry off, as facecli imports it
    from facecli.pipeline import Pipeline

    pipe = Pipeline(device="cpu", embed=False)
    pipe._croppers = pipe.embedder.parts
    faces = [f for r in pipe.run(paths[:50]) for f in r.faces]
    inputs: dict[str, list] = {"yunet": []}
    for path in paths[:20]:  # as YuNet.raw feeds them: BGR, zero-padded to a multiple of 32
        image = read_image(path)
        x = np.zeros((1, 3, -(-image.shape[0] // 32) * 32, -(-image.shape[1] // 32) * 32), np.float32)
        x[0, :, :image.shape[0], :image.shape[1]] = image[:, :, ::-1].transpose(2, 0, 1)
        inputs["yunet"].append(x)
    for i, part in enumerate(pipe.embedder.parts):
        s = spec(part.name)
        x = [((f.crops[i][None].astype(np.float32) - s.preprocess["mean"]) / s.preprocess["std"]).astype(np.float32)
             for f in faces]
        inputs[part.name] = [np.ascontiguousarray(v.transpose(0, 3, 1, 2)) if s.input["layout"] == "NCHW" else v
                             for v in x]
    files = {name: [("facecli's file", verified_path(name))] for name in inputs}
    for name in ("yunet", "sface"):
        files[name].append(("OpenCV Zoo int8bq file", source_path(name)))
    if "facenet-int8" in inputs:
        files["facenet-int8"].append(("float facenet file", verified_path("facenet")))
    cv2.setNumThreads(1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    rows = []
    for name, xs in inputs.items():
        session = ort.InferenceSession(str(verified_path(name)), opts, providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]
        reference = [np.concatenate([o.ravel() for o in session.run(None, {feed: x})]) for x in xs]
        ort_rate = len(xs) / timed(lambda s=session, f=feed, xs=xs: [s.run(None, {f: x}) for x in xs], rounds)
        rows.append([name, "onnxruntime", "facecli's file", f"{ort_rate:.1f}", "1", "-"])
        for label, path in files[name]:
            try:
                net = cv2.dnn.readNet(str(path))
            except cv2.error:
                rows.append([name, "cv2.dnn", label, "-", "-", "cannot load (per-channel QDQ int8)"])
                continue

            def forward(net=net, xs=xs, names=names) -> list:
                out = []
                for x in xs:
                    net.setInput(x)
                    out.append(np.concatenate([o.ravel() for o in net.forward(names)]))
                return out

            got = forward()
            cos = min(float(np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b))
                      for a, b in zip(got, reference))
            rate = len(xs) / timed(forward, rounds)
            rows.append([name, "cv2.dnn", label, f"{rate:.1f}", f"{rate / ort_rate:.2f}", f"{cos:.5f}"])
    return rows


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--model", default="fusion")
    add_lfw(ap, "--lfw-dir", count=300)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of each network")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--backends", action="store_true", help="also time cv2.dnn against onnxruntime per network")
    args = ap.parse_args()
    os.environ["FACECLI_THREADS"] = str(args.threads)
    sets = {"LFW (250x250)": lfw_subset(args.lfw, args.lfw_count),
            "sdist photos (0.56-3.35 MP)": photos()}
    results = {"model": args.model, "threads": args.threads, "batch": args.batch, "sets": {}}
    for label, paths in sets.items():
        if not paths:
            continue
        rows, info = profile(paths, args.model, args.rounds, args.batch)
        total = sum(s for _, s in rows)
        table(f"{label}: {info['images']} images, {info['faces']} faces, --model {args.model}, "
              f"{args.threads} thread(s) per network, median of {args.rounds}",
              ["stage", "ms / image", "ms / face", "share"],
              [[name, f"{s / info['images'] * 1000:.2f}", f"{s / max(info['faces'], 1) * 1000:.2f}",
                f"{s / total:.1%}"] for name, s in [*rows, ("total", total)]])
        results["sets"][label] = {**info, "stages_ms_per_image": {n: round(s / info["images"] * 1000, 3)
                                                                  for n, s in rows},
                                  "total_ms_per_image": round(total / info["images"] * 1000, 3)}
    if args.backends:
        rows = backends(sets["LFW (250x250)"] or sets["sdist photos (0.56-3.35 MP)"], args.rounds)
        table("Backends, one thread, batch 1 (YuNet: 20 images; embedders: the faces of 50 images)",
              ["network", "backend", "file", "items/s", "vs onnxruntime", "min cosine vs onnxruntime"], rows)
        results["backends"] = rows
    write_results("profile_stages.json", results)


if __name__ == "__main__":
    main()
