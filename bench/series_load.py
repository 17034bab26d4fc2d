"""Series load: medmm vs SimpleITK ImageSeriesReader vs MONAI LoadImage(PydicomReader).

A synthetic CT (300 slices of 512x512 int16, one file per slice, intercept -1024) is written
to a temp folder; each reader produces a float32 rescaled volume; warm cache; medians.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import numpy as np

from bench.common import median_time, write_ct


def run(n: int = 300, size: int = 512, repeat: int = 5) -> dict[str, float]:
    from medmm.imaging import load_volume

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="medmm-bench-") as folder:
        write_ct(folder, n, size)
        ours = load_volume(folder)
        assert ours.data.dtype == np.float32 and ours.shape == (size, size, n)
        results["medmm"] = median_time(lambda: load_volume(folder), repeat)

        try:
            import SimpleITK as sitk
        except ImportError:
            sitk = None
        if sitk is not None:
            def sitk_load():
                reader = sitk.ImageSeriesReader()
                reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
                reader.SetOutputPixelType(sitk.sitkFloat32)
                return reader.Execute()  # an array view of it is free; the image must stay alive

            image = sitk_load()
            ref = sitk.GetArrayViewFromImage(image)
            assert np.array_equal(ref.transpose(2, 1, 0), ours.data), "SimpleITK and medmm disagree"
            del ref, image
            results["simpleitk"] = median_time(sitk_load, repeat)

        from monai.transforms import LoadImage

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            monai_load = LoadImage(reader="PydicomReader", image_only=True, dtype=np.float32)
            results["monai_pydicom"] = median_time(lambda: monai_load(folder), max(2, repeat // 2))
    return results


def report(results: dict[str, float], n: int, size: int) -> str:
    lines = [f"series load, {n} slices of {size}x{size} int16 -> float32 (median, warm cache)"]
    for name, t in results.items():
        lines.append(f"  {name:<14} {t:7.3f} s")
    if "simpleitk" in results:
        lines.append(f"  medmm vs SimpleITK: {results['simpleitk'] / results['medmm']:.2f}x faster (target >= 1.0x)")
    lines.append(f"  medmm vs MONAI PydicomReader: {results['monai_pydicom'] / results['medmm']:.2f}x faster (target >= 4x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--slices", type=int, default=300)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    print(report(run(a.slices, a.size, a.repeat), a.slices, a.size), flush=True)


if __name__ == "__main__":
    main()
