"""The `ovseg` command line end to end on an image, a folder and a short video made here."""

from __future__ import annotations

import json

import cv2
import numpy as np
from helpers.cli_inputs import picture

from ovseg_ros.cli.main import main


def test_single_image_outputs_and_scores(tmp_path, model_args):
    img = tmp_path / "room.png"
    cv2.imwrite(str(img), picture(0))
    out = tmp_path / "out"
    scores = tmp_path / "s.npz"
    rc = main(["segment", str(img), "--prompts", "chair, person,table", "-o", str(out),
               "--save-scores", str(scores), *model_args])
    assert rc == 0
    labels = cv2.imread(str(out / "room_labels.png"), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (72, 96) and labels.dtype == np.uint8
    overlay = cv2.imread(str(out / "room_overlay.png"))
    assert overlay.shape == (72, 96, 3)
    report = json.loads((out / "room.json").read_text())
    assert report["label_ids"] == {"background": 0, "chair": 1, "person": 2, "table": 3}
    assert {c["class_name"] for c in report["classes"]} == {"chair", "person", "table"}
    data = np.load(scores)
    # 72 x 96 resized to short side 64 -> 64 x 85 -> 4 x 6 patches; channel 0 is background.
    assert data["patch_probs"].shape == (4, 4, 6)
    assert list(data["class_names"]) == ["background", "chair", "person", "table"]
    fractions = {c["class_id"]: c["pixel_fraction"] for c in report["classes"]}
    for cid, frac in fractions.items():
        assert np.isclose(frac, (labels == cid).mean())


def test_folder_and_progress(tmp_path, model_args, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.jpg"), picture(i))
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["segment", str(folder), "--prompts", "a,b", "-o", str(out), *model_args]) == 0
    assert sorted(p.name for p in out.glob("*_labels.png")) == [f"f{i}_labels.png"
                                                                for i in range(3)]
    assert "ovseg" in capsys.readouterr().err  # tqdm progress bar on stderr


def test_video(tmp_path, model_args):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 72))
    for i in range(4):
        writer.write(picture(i))
    writer.release()
    out = tmp_path / "out"
    assert main(["segment", str(video), "--prompts", "a,b", "-o", str(out),
                 "--save-scores", str(tmp_path / "v.npz"), *model_args]) == 0
    assert len(list(out.glob("*_overlay.png"))) == 4
    assert np.load(tmp_path / "v.npz")["patch_probs"].shape == (4, 3, 4, 6)


def test_errors_are_one_line(tmp_path, model_args, capsys):
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), picture(0))
    assert main(["segment", str(tmp_path / "missing"), "--prompts", "a", *model_args]) != 0
    assert main(["segment", str(img), "--prompts", "a,a", *model_args]) == 2
    err = capsys.readouterr().err
    assert "duplicates" in err and "Traceback" not in err
    assert main(["segment", str(img), "--prompts", "a", "--model", model_args[1],
                 "--heads", str(tmp_path / "none.pt"), "--clip-weights", model_args[3]]) == 2
    assert "head checkpoint not found" in capsys.readouterr().err


def test_random_fallback_says_so(tmp_path, model_args, capsys):
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), picture(0))
    args = ["segment", str(img), "--prompts", "a", "-o", str(tmp_path / "o"),
            "--model", model_args[1], "--clip-weights", str(tmp_path / "missing.bin"),
            "--device", "cpu", "--input-size", "32", "--random-fallback"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "SEEDED RANDOM weights" in err and "meaningless" in err
    assert json.loads((tmp_path / "o" / "x.json").read_text())["random_weights"] is True


def test_keyframe_every(tmp_path, model_args):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"f{i}.png"), picture(i))
    out = tmp_path / "out"
    assert main(["segment", str(folder), "--prompts", "a,b", "-o", str(out),
                 "--keyframe-every-n", "2", *model_args]) == 0
    flags = [json.loads((out / f"f{i}.json").read_text())["keyframe"] for i in range(5)]
    assert flags == [True, False, True, False, True]
