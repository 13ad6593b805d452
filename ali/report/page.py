"""The report page: one self-contained HTML file per preset (``results/report.html``,
``results/smoke/report.html``) that a researcher reads offline.

At the top, every number the paper reports beside ours with a computed verdict; then the figures
with what the paper's figure showed, the training curves and each section's provenance. Images are
embedded as base64 PNG data URIs, the CSS is inline, and there is no script and no external link.

    python -m ali.report.page --results results/smoke --out results/smoke/report.html
"""

from __future__ import annotations

import argparse
import base64
import math
import re
from collections.abc import Iterable
from html import escape
from pathlib import Path

import pandas as pd

from ali.report import curves
from ali.config import PRESET_DIR, get, load_config
from ali.report.comparisons import Comparison, all_comparisons, mixture_comparisons, plural, read_table
from ali.report.plugins import plugin_block
from ali.report.reference import PAPER_MIXTURE_N_RUNS
from ali.report.verdicts import PAPER_PRESET, TEST_STATEMENT, VERDICTS
from ali.train.files import read_json, write_text

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1180px;margin:24px auto;
padding:0 16px;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.4em}
.banner{background:#fff4d6;border:1px solid #e0b84a;padding:8px 12px;border-radius:4px}
.test{background:#f4f6f8;border-left:4px solid #8a99a8;padding:8px 12px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.8em;width:100%}
th,td{border:1px solid #d5d9de;padding:3px 5px;vertical-align:top;text-align:left;overflow-wrap:break-word}
table#verdicts{min-width:1080px}td.what{min-width:10em}
th{background:#eef1f4}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.note{color:#555;font-size:.92em;min-width:9em}
table.prov{width:auto}table.prov td{overflow-wrap:normal}
.v-consistent{background:#dff3e3}.v-differs{background:#fbdcdc}
.v-not-run-at-this-scale{background:#eceff1;color:#555}.v-smoke-not-comparable{background:#fff1cc}
.v-reference-only-not-their-model{background:#e8eefc}.v-cannot-test-1-training-seed{background:#eceff1;color:#555}
figure{margin:1em 0;padding:8px;border:1px solid #e3e6e9;border-radius:4px}
figure img{max-width:100%;height:auto;display:block;margin:auto}
figure img.pixels{image-rendering:pixelated}
figcaption{font-size:.9em;color:#333;margin-top:6px}
.missing{color:#8a5a00;font-style:italic}
"""

PAPER_FIGURES = {  # dataset -> the paper's figure of samples and reconstructions
    "svhn": "Figure 2 (SVHN)", "celeba": "Figure 3 (CelebA)", "cifar10": "Figure 4 (CIFAR10)",
    "tiny_imagenet": "Figure 5 (Tiny ImageNet; ours: Tiny ImageNet 200, our stand-in)",
}
FIGURE_KINDS = ("samples", "reconstructions", "interpolations")
IMAGE_GRID_PX = 720  # image grids are shown at the integer multiple of their width nearest below this
FIGURE_NAME = re.compile(r"(?P<dataset>.+)_(?P<model>[a-z0-9]+)_seed(?P<seed>\d+)_(?P<kind>"
                         + "|".join(FIGURE_KINDS) + ")")
CAPTIONS = {
    "figure8": (
        "The paper's Figure 8 compares (a) ALI, (b) GAN with an encoder learned to reconstruct latent samples "
        "(learned inverse mapping), (c) GAN with an encoder learned through ALI (post-hoc learned inference) and "
        "(d) a VAE on the 2D mixture of 25 Gaussians; the paper reports that ALI covers the latent space (second "
        "row) much better and produces better samples than the two GAN models augmented with inference. "
        "Ours: rows data x ~ q(x), latent codes z ~ q(z|x), reconstructions, prior z ~ p(z), samples "
        "x ~ p(x|z); columns as the paper's; points coloured by mixture component. (a) is the best-covering ALI "
        "(our choice of tie-break). (b) and (c) both add an encoder to one trained GAN, the best-covering one, "
        "as the paper's two post-hoc baselines do: their decoder, so their prior and sample rows, are that GAN's "
        "and identical by construction; only the encoder (latent codes, reconstructions) differs between them."),
    "samples": "The paper's {figure}, (a): samples x ~ p(x | z), z ~ p(z), which it says exhibit the same image "
               "fidelity as samples from other adversarially trained models.",
    "reconstructions": "The paper's {figure}, (b): reconstructions x̂ ~ p(x | ẑ), ẑ ~ q(z | x); odd columns are "
                       "original samples from the validation set and even columns the corresponding "
                       "reconstructions. The paper notes they are not always faithful (object placement, colour, "
                       "style, sometimes identity).",
    "interpolations": "The paper's Figure 6 (CelebA validation set): left and right columns are the original pairs "
                      "x1 and x2, and the columns in between decode latent representations interpolated linearly "
                      "from z1 to z2 (both from the encoder).",
}


# ------------------------------------------------------------------------------------------ helpers
def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure(png: bytes, caption: str, alt: str, upscale_to: int | None = None) -> str:
    """An embedded PNG; ``upscale_to``: show a grid of small images at an integer multiple of its width
    near that many pixels, nearest-neighbour (the PNG itself is embedded as drawn)."""
    size = ""
    if upscale_to:
        width = png_width(png)
        size = f' class="pixels" width="{width * max(1, upscale_to // width)}"'
    return (f'<figure><img src="{data_uri(png)}" alt="{escape(alt)}"{size}>'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def png_width(png: bytes) -> int:
    """The width in the PNG's IHDR chunk (bytes 16-20)."""
    return int.from_bytes(png[16:20], "big")


def missing(text: str) -> str:
    return f'<p class="missing">{escape(text)}</p>'


def fmt(x: float | None, digits: int = 3) -> str:
    """``digits`` significant digits; "–" only where there is no number."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def mean_std(mean: float | None, std: float | None) -> str:
    """``mean ± std`` with the std to 2 significant digits and the mean to the same decimal place;
    a mean without a spread (one run) alone, to 3 significant digits; "–" where there is no mean."""
    if mean is None or not math.isfinite(mean):
        return "–"
    if std is None or not math.isfinite(std):
        return fmt(mean)
    if std == 0:
        return f"{fmt(mean)} ± 0"
    decimals = max(0, 1 - math.floor(math.log10(abs(std))))
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def number(x: float) -> str:
    """A published number as printed (shortest round-trip form)."""
    return format(x, "g")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def seconds(total: float) -> str:
    if not math.isfinite(total):
        return "–"
    h, rem = divmod(int(round(total)), 3600)
    return f"{h}h {rem // 60:02d}m {rem % 60:02d}s"


# ------------------------------------------------------------------------------------ verdict table
def verdict_row(c: Comparison) -> str:
    p, o = c.published, c.ours
    extra = "".join(f"; {k} {number(v)}" for k, v in c.published_extra.items())
    published = number(p.value) + (f" ± {number(p.error)}" if p.error is not None else "") + extra
    ours = "–" if o is None else mean_std(o.mean, o.std)
    se_ours = "–" if o is None else fmt(o.standard_error(), 3)
    attrs = {"data-key": c.key, "data-quantity": c.quantity, "data-verdict": c.verdict,
             "data-published": " ".join(number(x) for x in c.published_numbers())}
    attr_text = " ".join(f'{k}="{escape(v)}"' for k, v in attrs.items())
    cells = [  # the verdict next to what it is about, so that a narrow window shows it without scrolling
        (escape(c.source), "note"), (escape(c.quantity), "what"),
        (f"<strong>{escape(c.verdict)}</strong>", f"v-{slug(c.verdict)}"), (fmt(c.z, 3), "num"),
        (escape(published), "num"), (escape(p.describe()) + f" (SE {fmt(p.standard_error(), 3)})", "note"),
        (escape(ours), "num"), (str(o.n) if o is not None else "0", "num"), (se_ours, "num"),
        (escape(c.ours_note), "note"),
    ]
    return f"<tr {attr_text}>" + "".join(f'<td class="{cls}">{text}</td>' for text, cls in cells) + "</tr>"


VERDICT_HEAD = ("<tr><th>source</th><th>quantity</th><th>verdict</th><th>z</th><th>published (value ± error)</th>"
                "<th>how the error is read</th><th>ours (mean ± std)</th><th>n</th><th>SE ours</th><th>our runs</th></tr>")


def verdict_table(comparisons: list[Comparison]) -> str:
    head = VERDICT_HEAD
    counts = {v: sum(c.verdict == v for c in comparisons) for v in VERDICTS}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return (f'<p class="test"><strong>Test.</strong> {escape(TEST_STATEMENT)}</p>'
            f"<p>{len(comparisons)} published numbers: {escape(summary)}.</p>"
            f'<div class="scroll"><table id="verdicts">{head}{"".join(verdict_row(c) for c in comparisons)}'
            f"</table></div>")


# -------------------------------------------------------------------------------------- provenance
def _unique(values: Iterable) -> list[str]:
    return sorted({str(v) for v in values if pd.notna(v) and str(v) != ""})


def provenance(frame: pd.DataFrame | None, wall: str, hashes: Iterable[str], what: str) -> str:
    """Preset, device, code version (each distinct value with its count), wall time and how many
    distinct config hashes the rows behind a section have: a compact table, not a list of hashes."""
    if frame is None or frame.empty:
        return missing(f"provenance: no {what} recorded")
    rows = []
    for label, column in (("preset", "preset"), ("device", "device"), ("code version", "code_version")):
        counts = frame[column].dropna().astype(str).value_counts() if column in frame else pd.Series(dtype=int)
        rows += [(label, value, str(n)) for value, n in sorted(counts.items())] or [(label, "–", "")]
    hash_values = _unique(v for col in hashes if col in frame for v in frame[col])
    columns = ", ".join(col for col in hashes if col in frame) or "–"
    rows.append((f"config hashes ({len(hash_values)} distinct)", f"in the tables' {columns} column{'s' if ', ' in columns else ''}", str(len(frame))))
    rows.append(("wall time", seconds(frame[wall].sum()) if wall in frame else "–", str(len(frame))))
    body = "".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td><td class='num'>{escape(c)}</td></tr>"
                   for a, b, c in rows)
    return (f'<details open><summary>Provenance</summary><table class="prov"><tr><th>what</th><th>value</th>'
            f"<th>{escape(what)}</th></tr>{body}</table></details>")


def image_records(results: Path) -> pd.DataFrame | None:
    """One row per unsupervised image run, from its record.json (these runs have no CSV of their own)."""
    rows = []
    for path in sorted(Path(results).glob("images/*/*/seed*/record.json")):
        record = read_json(path, "record", "delete it and rerun the job that trains this run")
        prov = record.get("provenance", {})
        rows.append({"preset": record.get("spec", {}).get("preset"), "device": prov.get("device"),
                     "code_version": prov.get("code_version"), "wall_time_s": record.get("wall_time_s", math.nan),
                     "config_hash": record.get("config_hash")})
    return pd.DataFrame(rows) if rows else None


# ----------------------------------------------------------------------------------------- sections
def curve_blocks(pngs: dict[str, bytes | None], where: str) -> str:
    if not pngs:
        return missing(f"no history recorded (no history.csv under {where})")
    return "".join(figure(png, f"Training curves, {name}: one line per run; losses are averaged over the "
                               f"steps since the previous row of history.csv.", name)
                   if png is not None else missing(f"{name}: no history recorded") for name, png in pngs.items())


def mixture_section(results: Path) -> str:
    out = ["<h2 id='mixture'>Mixture of 25 Gaussians (section 4.5, Figure 8)</h2>"]
    figures = {path.name: path.read_bytes() for path in sorted(results.glob("figure8_*.png"), key=figure8_order)}
    main = (results / "figure8.png").read_bytes() if (results / "figure8.png").exists() else None
    if main is not None and main not in figures.values():  # figure8.png is a copy of one protocol's: shown once
        figures = {"figure8.png": main, **figures}
    if not figures:
        out.append(missing("no Figure 8 (the mixture experiment has not run)"))
    for i, (name, png) in enumerate(figures.items()):
        also = " (also results/figure8.png)" if png == main and name != "figure8.png" else ""
        protocol = name.removesuffix(".png").removeprefix("figure8").lstrip("_") or "the figure protocol"
        text = CAPTIONS["figure8"] if i == 0 else "Rows and columns as in the first Figure 8 above."
        out.append(figure(png, f"{name}{also}: protocol {protocol}. {text}", name))
    out.append(plugin_block(results))  # empty unless the config names plug-in models
    out.append("<h3>Paired runs of the random protocol</h3>")
    paired = curves.paired_runs_figure(read_table(results / "mixture_runs.csv"))
    out.append(figure(paired, "ALI run i and GAN run i share lr, β1 and init std (paired draws). Bars: our final "
                              "mode count of each run (the paper's count, from mixture_runs.csv); lines and bands: "
                              f"the paper's mean ± std over its {PAPER_MIXTURE_N_RUNS} runs of each model.",
                      "paired runs")
               if paired is not None else missing("no random-protocol runs recorded"))
    out.append("<h3>Training curves</h3>")
    out.append(curve_blocks(curves.mixture_curves(results), "mixture/*/*/run*/"))
    out.append(provenance(read_table(results / "mixture_runs.csv"), "wall_time_s", ["config_hash"], "runs"))
    return "".join(out)


def paper_protocols() -> list[str]:
    """The mixture protocols of the paper preset, in its order (the paper's ``random`` first)."""
    return list(get(load_config(PRESET_DIR / "paper.yaml"), "mixture.protocols", dict))


def published_protocol(folder: Path) -> str:
    """One published protocol: its summary rows against the paper's numbers, and where they came from."""
    table = read_table(folder / "mixture.csv")
    prov = read_json(folder / "provenance.json", "published provenance",
                     f"publish the protocol again with `ali report publish ... --out dir={folder}`")
    compared = [c for c in mixture_comparisons(table) if c.ours is not None]
    runs = ", ".join(f"{n} {status}" for status, n in prov.get("status", {}).items())
    text = (f"<p>{prov.get('n_runs')} runs ({escape(runs)}); code {escape(', '.join(prov.get('code_version', [])))}, "
            f"device {escape(', '.join(prov.get('device', [])))}, published {escape(str(prov.get('published_at_utc')))} "
            f"(<code>{escape(str(folder))}</code>).</p>")
    if not compared:
        return text + missing("no published number to compare for this protocol; its rows are in mixture.csv")
    rows = "".join(verdict_row(c) for c in compared)
    return text + f'<div class="scroll"><table class="published">{VERDICT_HEAD}{rows}</table></div>'


def published_section(published: Path | None) -> str:
    """Which protocols of the paper plan stand at paper scale in ``results/published/mixture/``."""
    out = ["<h2 id='published'>Paper-scale results in this repository</h2>",
           "<p>Protocols published whole (every run of the paper plan, diverged runs kept) under "
           "<code>results/published/mixture/&lt;protocol&gt;/</code>, which the workflow never writes nor "
           "retrains.</p>"]
    for protocol in paper_protocols():
        folder = None if published is None else Path(published) / "mixture" / protocol
        out.append(f"<h3>{escape(protocol)}</h3>")
        if folder is None or not (folder / "provenance.json").exists():
            out.append(missing(f"{protocol}: not yet run at paper scale"))
        else:
            out.append(published_protocol(folder))
    return "".join(out)


def figure8_order(path: Path) -> tuple:
    """The paper's protocol (random) first, then the others by name."""
    protocol = path.stem.removeprefix("figure8_")
    return (protocol != "random", protocol)


KIND_TITLES = {"samples": "Samples", "reconstructions": "Reconstructions (odd columns data, even columns ours)",
               "interpolations": "Interpolations"}


def image_caption(path: Path) -> str:
    m = FIGURE_NAME.fullmatch(path.stem)
    if m is None:
        return path.name
    dataset, model, kind = m["dataset"], m["model"], m["kind"]
    paper = PAPER_FIGURES.get(dataset)
    ours = f"{KIND_TITLES[kind]}. Ours: {dataset}, {model.upper()}, seed {m['seed']}."
    if paper is None and kind != "interpolations":
        return f"{ours} {dataset} is a smoke stand-in: the paper has no figure for it."
    text = CAPTIONS[kind].format(figure=paper)
    if model != "ali":
        text += f" The paper shows ALI only; {model.upper()} is ours, for comparison."
    return f"{ours} {text}"


def figure_order(path: Path) -> tuple:
    """Dataset, model, seed, then samples before reconstructions before interpolations."""
    m = FIGURE_NAME.fullmatch(path.stem)
    return (m["dataset"], m["model"], int(m["seed"]), FIGURE_KINDS.index(m["kind"])) if m else (path.stem,)


def images_section(results: Path) -> str:
    out = ["<h2 id='images'>Images: samples, reconstructions, interpolations (Figures 2-6)</h2>"]
    pngs = sorted((results / "figures").glob("*.png"), key=figure_order)
    if not pngs:
        out.append(missing("no image figures (the image experiments have not run)"))
    out += [figure(p.read_bytes(), image_caption(p), p.name, upscale_to=IMAGE_GRID_PX) for p in pngs]
    out.append("<h3>Training curves</h3>")
    out.append(curve_blocks(curves.image_curves(results), "images/*/*/seed*/"))
    out.append(provenance(image_records(results), "wall_time_s", ["config_hash"], "runs"))
    return "".join(out)


def svm_section(results: Path) -> str:
    trials = read_table(results / "svm_trials.csv")
    per_run = None  # one row per feature run (source x training seed): its trials' wall time counted once
    if trials is not None and not trials.empty:
        per_run = trials.drop_duplicates([c for c in ("model", "image_seed") if c in trials])
    return ("<h2 id='svm'>Table 1, L2-SVM rows</h2><p>The numbers are in the table at the top and in "
            "<code>table1.csv</code>, one row per SVM trial in <code>svm_trials.csv</code>.</p>"
            + provenance(per_run, "trials_wall_time_s", ["settings_hash", "source_config_hash"],
                         "feature runs (SVM trials)"))


def label_counts(table: pd.DataFrame) -> list[int]:
    """The label counts table2.csv has columns for (``error_pct_mean_<n>``), ascending."""
    return sorted(int(c.rsplit("_", 1)[1]) for c in table if c.startswith("error_pct_mean_"))


def our_table2(table: pd.DataFrame | None) -> str:
    """table2.csv as this preset ran it, at its own label counts (a smoke preset's are not the paper's)."""
    if table is None or table.empty:
        return missing("no Table 2 runs recorded (table2.csv)")
    counts = label_counts(table)
    head = "<tr><th>model</th><th>dataset</th>" + "".join(f"<th>{n} labels: error % (mean ± std)</th>"
                                                           for n in counts) + "</tr>"
    rows = []
    for _, r in table.iterrows():
        cells = []
        for n in counts:
            seeds, diverged = r.get(f"n_seeds_{n}"), r.get(f"n_diverged_{n}")
            runs = "" if pd.isna(seeds) else f" ({plural(int(seeds), 'seed')}, {int(diverged or 0)} diverged)"
            cells.append(f"<td class='num'>{escape(mean_std(r.get(f'error_pct_mean_{n}'), r.get(f'error_pct_std_{n}')) + runs)}</td>")
        rows.append(f"<tr><td>{escape(str(r['model']))}</td><td>{escape(str(r['dataset']))}</td>{''.join(cells)}</tr>")
    return ("<h3>Table 2 as this preset ran it</h3><p>Ours at the label counts this preset trained "
            "(<code>table2.csv</code>); the published numbers and verdicts are in the table at the top.</p>"
            f'<div class="scroll"><table id="our-table2">{head}{"".join(rows)}</table></div>')


def semisup_section(results: Path) -> str:
    return ("<h2 id='semisup'>K+1 semi-supervised (Table 1 K+1 rows, Table 2)</h2><p>One row per run in "
            "<code>semisup_runs.csv</code>; Table 2 in <code>table2.csv</code>.</p>"
            + our_table2(read_table(results / "table2.csv")) + "<h3>Training curves</h3>"
            + curve_blocks(curves.semisup_curves(results), "semisup/*/*/labels*/seed*/")
            + provenance(read_table(results / "semisup_runs.csv"), "wall_time_s", ["config_hash"], "runs"))


def preset_of(results: Path) -> str:
    """The preset named in the tables (every row of a results folder has one preset)."""
    for name in ("mixture.csv", "table1.csv", "table2.csv", "semisup_runs.csv"):
        table = read_table(results / name)
        if table is not None and "preset" in table and len(table):
            return str(table["preset"].iloc[0])
    return "unknown"


CITE = ("Dumoulin, V., Belghazi, I., Poole, B., Mastropietro, O., Lamb, A., Arjovsky, M. and Courville, A. "
        "Adversarially Learned Inference. ICLR 2017. arXiv:1606.00704. This suite: see CITATION.cff.")


def build_page(results: Path, preset: str | None = None, published: Path | None = None) -> str:
    """The whole page as one HTML string, built only from files under ``results`` (and ``published``)."""
    results = Path(results)
    preset = preset or preset_of(results)
    banner = ("" if preset == PAPER_PRESET else
              f'<p class="banner"><strong>{escape(preset)} preset:</strong> tiny budgets and data. Its numbers '
              f"show that every path runs; they are NOT comparable to the published ones, and every verdict "
              f"says so.</p>")
    body = [
        f"<h1>ALI, retrained: report ({escape(preset)} preset)</h1>", banner,
        "<p>Dumoulin et al., <em>Adversarially Learned Inference</em> (ICLR 2017), retrained. Published numbers "
        "come from <code>ali/report/reference.py</code> (each with its source); ours from the CSV tables beside "
        "this page.</p>",
        "<h2 id='numbers'>Every number the paper reports, and ours</h2>", verdict_table(all_comparisons(results)),
        published_section(published),
        mixture_section(results), images_section(results), svm_section(results), semisup_section(results),
        f"<h2 id='cite'>How to cite</h2><p>{escape(CITE)}</p>",
    ]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>ALI, retrained: {escape(preset)} preset</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def write_report(results: Path, out: Path, preset: str | None = None, published: Path | None = None) -> Path:
    """Write the page for the results folder ``results`` to ``out`` (atomically)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, build_page(Path(results), preset, published))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the self-contained report page of one results folder.")
    parser.add_argument("--results", type=Path, required=True, help="the preset's results folder, e.g. results/smoke")
    parser.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    parser.add_argument("--preset", default=None, help="the preset's name (default: read from the tables)")
    args = parser.parse_args(argv)
    write_report(args.results, args.out, args.preset)


def report_page(inputs: dict, outputs: dict, settings: dict, ctx) -> None:
    """``ali report page --in results=DIR [published=results/published] --out page=FILE
    [--settings '{"preset": "smoke"}']``."""
    published = inputs.get("published", [None])[0]
    write_report(Path(inputs["results"][0]), Path(outputs["page"]), settings.get("preset"),
                 None if published is None else Path(published))


if __name__ == "__main__":
    main()
