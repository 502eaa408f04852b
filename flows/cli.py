"""The `skillpulse` command line.

Every command runs the same Prefect flows a deployment runs. Errors a user can fix
(a missing file, a bad taxonomy, an unwritable folder, a bad month) end the command
with one message naming the path and the problem, and exit status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from extractors.errors import SkillpulseError
from flows.settings import PipelineSettings, configure_environment

app = typer.Typer(
    name="skillpulse",
    help="Measure demand for digital skills from job ads: ingest, extract, aggregate, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
taxonomy_app = typer.Typer(help="Inspect and validate taxonomies.", no_args_is_help=True)
app.add_typer(taxonomy_app, name="taxonomy")
console = Console(stderr=False, log_path=False)
err_console = Console(stderr=True)

SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        "-s",
        help="Sources file (YAML/TOML) or one JSONL/CSV/Parquet file. Default: the bundled sample ads.",
    ),
]
OutOpt = Annotated[
    str,
    typer.Option(
        "--out",
        "-o",
        metavar="DIR|URL",
        help="Output folder for the datasets and reports, or an fsspec URL: memory://PATH, "
        "s3://BUCKET/PATH (needs 'pip install s3fs'), gs://BUCKET/PATH (needs 'pip install gcsfs').",
    ),
]
TaxOpt = Annotated[
    str, typer.Option("--taxonomy", "-t", help="'builtin', 'esco:DIR', a taxonomy folder or a concepts CSV.")
]
MonthsOpt = Annotated[
    list[str] | None,
    typer.Option("--months", "-m", help="Only these months (YYYY-MM); repeat or comma-separate. Default: all."),
]
RefreshOpt = Annotated[
    bool, typer.Option("--full-refresh", help="Ignore the watermarks: read every source whole and rewrite its months.")
]
LangOpt = Annotated[str, typer.Option("--lang", "-l", help="Language of the report: en, ru, uk or ro.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's log lines.")]
WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers",
        "-w",
        help="Processes for ingest and extract; 0 = automatic (on 2+ cores: ingest uses 2 past its first "
        "1,000 records, extract 2 for 50,000+ ads).",
    ),
]
RunnerOpt = Annotated[
    str, typer.Option("--runner", help="Run the per-month tasks here ('local') or on a Dask cluster ('dask').")
]
DaskOpt = Annotated[
    str | None,
    typer.Option("--dask-address", help="Dask scheduler (tcp://host:8786) for --runner dask; none = a local cluster."),
]


def _months(values: list[str] | None) -> tuple[str, ...]:
    return tuple(m.strip() for v in values or [] for m in v.split(",") if m.strip())


def _fail(message: str) -> None:
    from rich.markup import escape

    # escape: a message may hold brackets ("install skillpulse[embeddings]") that are not markup.
    err_console.print(f"[bold red]skillpulse: error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn user-fixable errors into one message and exit status 2."""
    try:
        yield
    except SkillpulseError as exc:
        _fail(str(exc))
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"invalid setting {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    except PermissionError as exc:
        _fail(f"permission denied: {exc.filename}")
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:
        if _VERBOSE:
            raise
        err_console.print(
            f"[bold red]skillpulse: internal error:[/] {type(exc).__name__}: {exc}\n"
            "  (a bug, not your input: run again with --verbose for the traceback and report it)",
            highlight=False,
        )
        raise typer.Exit(code=1) from None


def _settings(
    source: str | None,
    out: str | Path,
    taxonomy: str,
    months: list[str] | None,
    lang: str = "en",
    full_refresh: bool = False,
    **scale: Any,
) -> PipelineSettings:
    settings = PipelineSettings(
        source=source,
        out_dir=str(out),
        taxonomy=taxonomy,
        months=_months(months),
        report_lang=lang,  # type: ignore[arg-type]
        full_refresh=full_refresh,
        **scale,  # workers, runner, dask_address
    )
    if "runner" in scale:
        from flows.runners import check_runner

        check_runner(settings)
    return settings


def _locked(settings: PipelineSettings, body: Callable[[str], Any]) -> Any:
    """Take the output folder's lock before Prefect starts, so a second run refuses at once.

    (Two temporary Prefect servers on one PREFECT_HOME would also fight over its database.)
    The flows take the same lock again; it is re-entrant within this process.
    """
    from flows.lock import output_lock
    from flows.settings import new_run_id

    run_id = new_run_id()
    with output_lock(settings.out_dir, run_id):
        return body(run_id)


@contextmanager
def _progress(title: str) -> Iterator[None]:
    from flows import progress

    with console.status(title, spinner="dots") as status:

        def show(stage: str, message: str) -> None:
            status.update(f"[bold]{stage}[/]: {message}")
            console.log(f"{stage}: {message}", highlight=False)

        progress.set_reporter(show)
        try:
            yield
        finally:
            progress.set_reporter(None)


_VERBOSE = False


def _run_stage(title: str, body: Callable[[], Any], verbose: bool) -> Any:
    global _VERBOSE
    _VERBOSE = verbose
    configure_environment(verbose)
    with _user_errors(), _progress(title):
        return body()


@app.command()
def run(
    source: SourceOpt = None,
    out: OutOpt = "skillpulse-data",
    taxonomy: TaxOpt = "builtin",
    months: MonthsOpt = None,
    lang: LangOpt = "en",
    full_refresh: RefreshOpt = False,
    workers: WorkersOpt = 0,
    runner: RunnerOpt = "local",
    dask_address: DaskOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run the whole pipeline (ingest, extract, aggregate, report) as Prefect flows.

    With no options it runs on the bundled sample ads into ./skillpulse-data.
    """

    def body() -> dict[str, Any]:
        settings = _settings(
            source, out, taxonomy, months, lang, full_refresh, workers=workers, runner=runner, dask_address=dask_address
        )
        from flows.checks import preflight

        preflight(settings)
        from flows.pipeline import pipeline_flow

        return _locked(settings, lambda run_id: pipeline_flow(settings, run_id))

    summary = _run_stage("starting Prefect (a temporary local server when none is set)", body, verbose)
    _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    counts = summary["counts"]
    console.print(f"\n[bold green]Done.[/] Output in [bold]{summary['out_dir']}[/] (run {summary['run_id']})")
    console.print("  datasets: postings/ mentions/ demand/ quarantine/ runs/   reports: reports/YYYY-MM/index.html")
    table = Table(title="Postings", title_justify="left")
    for col in ("read", "kept", "duplicates", "quarantined", "out of range"):
        table.add_column(col, justify="right")
    table.add_row(*(str(counts.get(k, 0)) for k in ("read", "kept", "duplicates", "quarantined", "out_of_range")))
    console.print(table)
    top = Table(title=f"Top competences ({', '.join(summary['months'])})", title_justify="left")
    top.add_column("competence")
    top.add_column("framework")
    top.add_column("ads", justify="right")
    top.add_column("share", justify="right")
    for row in summary["top_competences"]:
        top.add_row(str(row["label"]), str(row["framework"]), str(row["postings_with"]), f"{100 * row['share']:.1f}%")
    console.print(top)
    for page in summary["reports"]:
        console.print(f"  report: {page}")


@app.command()
def ingest(
    source: SourceOpt = None,
    out: OutOpt = "skillpulse-data",
    months: MonthsOpt = None,
    full_refresh: RefreshOpt = False,
    workers: WorkersOpt = 0,
    verbose: VerboseOpt = False,
) -> None:
    """Read what is new in the sources into postings/ (by month) and quarantine/ (by source)."""

    def body() -> dict[str, Any]:
        from flows.checks import preflight

        settings = _settings(source, out, "builtin", months, full_refresh=full_refresh, workers=workers)
        preflight(settings, need_taxonomy=False)
        from flows.ingest import ingest_flow

        return _locked(settings, lambda run_id: ingest_flow(settings, run_id))

    result = _run_stage("ingest", body, verbose)
    console.print(f"Ingested: {result['counts']}; months: {', '.join(result['months'])}")


def _run_on_output(name: str, module: str, flow_name: str, settings_args: dict[str, Any], verbose: bool) -> None:
    def body() -> dict[str, Any]:
        import importlib


        settings = _settings(None, **settings_args)
        from flows import storage

        if not (storage.root(settings.out_dir) / "postings").is_dir():
            raise SkillpulseError(f"[O002] {settings.out_dir} has no postings/: run 'skillpulse ingest' first")
        stage = getattr(importlib.import_module(module), flow_name)
        return _locked(settings, lambda run_id: stage(settings, run_id))

    result = _run_stage(name, body, verbose)
    console.print(f"{name}: {', '.join(f'{k}={v}' for k, v in result.items() if k != 'by_month')}")


@app.command()
def extract(
    out: OutOpt = "skillpulse-data",
    taxonomy: TaxOpt = "builtin",
    months: MonthsOpt = None,
    workers: WorkersOpt = 0,
    runner: RunnerOpt = "local",
    dask_address: DaskOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Find skill mentions in postings/ and write mentions/."""
    scale = {"workers": workers, "runner": runner, "dask_address": dask_address}
    _run_on_output(
        "extract", "flows.extract", "extract_flow", {"out": out, "taxonomy": taxonomy, "months": months, **scale},
        verbose,
    )


@app.command()
def aggregate(
    out: OutOpt = "skillpulse-data",
    taxonomy: TaxOpt = "builtin",
    months: MonthsOpt = None,
    runner: RunnerOpt = "local",
    dask_address: DaskOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Count demand from postings/ and mentions/ into demand/."""
    scale = {"runner": runner, "dask_address": dask_address}
    _run_on_output(
        "aggregate", "flows.aggregate", "aggregate_flow", {"out": out, "taxonomy": taxonomy, "months": months, **scale},
        verbose,
    )


@app.command()
def report(
    out: OutOpt = "skillpulse-data",
    taxonomy: TaxOpt = "builtin",
    months: MonthsOpt = None,
    lang: LangOpt = "en",
    verbose: VerboseOpt = False,
) -> None:
    """Write the monthly reports (HTML, CSV and XLSX in reports/YYYY-MM/) from demand/."""
    _run_on_output(
        "report",
        "flows.report",
        "report_flow",
        {"out": out, "taxonomy": taxonomy, "months": months, "lang": lang},
        verbose,
    )


@app.command()
def serve(
    source: SourceOpt = None,
    out: OutOpt = "skillpulse-data",
    taxonomy: TaxOpt = "builtin",
    port: Annotated[
        int, typer.Option(help="Port of the Prefect server started when PREFECT_API_URL is not set.")
    ] = 4200,
    verbose: VerboseOpt = False,
) -> None:
    """Run the prefect.yaml schedules (ingest and extract daily, aggregate and report monthly) here.

    Attaches to the Prefect server in PREFECT_API_URL, or starts one on 127.0.0.1 and stops it on exit.
    """
    import os

    from flows import serve as serving
    from flows import storage

    configure_environment(verbose)
    server = None
    with _user_errors():
        settings = _settings(source, out, taxonomy, None)
        specs = serving.deployment_specs()
        if not os.environ.get("PREFECT_API_URL"):
            console.print(f"Starting a Prefect server on 127.0.0.1:{port} (set PREFECT_API_URL to use yours) ...")
            server, url = serving.start_server(port)
            os.environ["PREFECT_API_URL"] = url
            console.print(f"Prefect UI: {url.removesuffix('/api')}")
        overrides = {
            "source": settings.source,
            "out_dir": str(storage.root(settings.out_dir).resolve()),
            "taxonomy": settings.taxonomy,
        }
        try:
            from prefect import serve as prefect_serve

            prefect_serve(*serving.build_deployments(specs, overrides))
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)


SharedOpt = Annotated[
    Path, typer.Option("--shared", help="Folder with data/benchmarks and data/taxonomies (the project's shared data).")
]


@app.command()
def link(
    input: Annotated[Path, typer.Option("--input", "-i", help='JSON Lines: {"id": ..., "text": ...} per line.')],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON Lines of ranked candidates, best first.")],
    taxonomy: TaxOpt = "builtin",
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Candidates per text.")] = 10,
    model: Annotated[
        str | None,
        typer.Option(help="A linker model (.skops); 'none' = untrained TF-IDF retrieval. Default: the shipped model."),
    ] = None,
    rerank: Annotated[
        str,
        typer.Option(help="'embeddings' (the default): the linker's candidates re-scored with sentence "
                     "embeddings (all-MiniLM-L6-v2, int8 ONNX, no torch; the concept vectors are computed "
                     "once per taxonomy, then cached); 'none': the linker alone (faster)."),
    ] = "embeddings",
) -> None:
    """Rank taxonomy concepts for each text: {"id", "candidates": [{"concept_id", "label", "score"}]}.

    With --taxonomy esco:DIR the concept ids are ESCO URIs.
    """
    from flows.link import link_file

    with _user_errors(), _progress("Linking"):
        stats = link_file(input, output, taxonomy, top_k, model, rerank=rerank)
    emb = stats["embedding"]
    built = "" if emb is None else (
        f"; concept embeddings {'read from the cache' if emb['cached'] else 'computed'} in {emb['seconds']} s")
    console.print(
        f"linked {stats['linked']} of {stats['read']} texts ({stats['bad']} bad lines) to {output} "
        f"at {stats['texts_per_second']} texts/s (index built in {stats['index_seconds']} s{built})"
    )
    for bad in stats["bad_lines"][:10]:
        err_console.print(f"  skipped {bad}", highlight=False)


@app.command()
def evaluate(
    shared: SharedOpt = Path("../shared"),
    model: Annotated[str | None, typer.Option(help="Linker model to evaluate (default: the shipped one).")] = None,
    methods: Annotated[str, typer.Option(help="Comma-separated: verbatim, tfidf, model.")] = "verbatim,tfidf,model",
    embeddings: Annotated[
        bool, typer.Option("--embeddings/--no-embeddings",
                           help="Also: the model + sentence-embedding re-ranking ('embeddings', what "
                           "'skillpulse link' does by default; the first run embeds the 13,896 ESCO "
                           "concepts, a few minutes, then cached).")
    ] = True,
    competences: Annotated[
        bool, typer.Option("--competences", help="Instead: competence P/R/F1 of matcher, classifier and both.")
    ] = False,
    spans: Annotated[
        bool, typer.Option("--spans/--no-spans", help="Also: skill-span P/R/F1 on the SkillSpan dev splits.")
    ] = True,
) -> None:
    """RP@1/5/10 and MRR on the ESCO-linked TECH and HOUSE validation splits, with the full ESCO taxonomy.

    With --spans (the default), also the extractor's skill spans against the SkillSpan TECH and HOUSE
    dev gold spans (exact and token-overlap precision, recall, F1; builtin and ESCO taxonomies).
    """
    from flows.evaluate import evaluate_esco_linking, evaluate_skillspan_spans, span_rows

    if competences:  # competence P/R/F1 on the competence-sentences test split (threshold chosen on dev)
        _print_competences()
        return
    with _user_errors():
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        if embeddings and "embeddings" not in chosen:
            chosen.append("embeddings")
        result = evaluate_esco_linking(shared, model, methods=chosen)
    table = Table(title="ESCO linking (validation splits)", title_justify="left")
    for col in ("method", "subset", "sentences", "RP@1", "RP@5", "RP@10", "MRR"):
        table.add_column(col, justify="left" if col in ("method", "subset") else "right")
    for subset, by_method in result["subsets"].items():
        for method, m in by_method.items():
            table.add_row(
                method, subset.upper(), str(m["sentences"]), *(f"{m[k]:.1f}" for k in ("RP@1", "RP@5", "RP@10", "MRR"))
            )
    console.print(table)
    console.print(f"speed (sentences/s): {result['speed']}; index built in {result['index_build_s']} s")
    if spans:
        with _user_errors():
            span_result = evaluate_skillspan_spans(shared)
        span_table = Table(title="Skill spans (SkillSpan dev splits; P/R/F1 %)", title_justify="left")
        for col in ("taxonomy", "subset", "gold", "predicted", "exact P", "exact R", "exact F1",
                    "partial P", "partial R", "partial F1"):
            span_table.add_column(col, justify="left" if col in ("taxonomy", "subset") else "right")
        for row in span_rows(span_result):
            span_table.add_row(*row)
        console.print(span_table)


def _print_competences() -> None:
    from flows.competence_eval import evaluate_competences, table_rows

    with _user_errors():
        result = evaluate_competences()
    table = Table(title=f"Competences ({result['split']} split, threshold {result['threshold']}; micro %)",
                  title_justify="left")
    for col in ("method", "group", "sentences", "P", "R", "F1", "TP", "FP", "FN"):
        table.add_column(col, justify="left" if col in ("method", "group") else "right")
    for row in table_rows(result):
        table.add_row(*row)
    console.print(table)


@app.command()
def train(
    shared: SharedOpt = Path("../shared"),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write the model (.skops) and its card.")
    ] = None,
    no_evaluate: Annotated[
        bool, typer.Option("--no-evaluate", help="Skip the validation metrics in the card.")
    ] = False,
    model: Annotated[
        str, typer.Option("--model", help="'linker' (the re-ranker) or 'competences' (the competence classifier).")
    ] = "linker",
) -> None:
    """Train the linker's re-ranker (or --model competences: the competence classifier) reproducibly.

    Fixed seeds; the model is written with skops plus a model card beside it.
    """
    from flows.train import train_model

    with _user_errors():
        card, path = train_model(model, shared, output, evaluate=not no_evaluate)
    used = "" if model == "linker" else \
        (", with" if card["training_data"]["used_shared_folder"] else ", without") + " the shared folder"
    console.print(f"wrote {path} ({card['bytes']} bytes, {card['train_seconds']} s{used}); card beside it")


@taxonomy_app.command("show")
def taxonomy_show(taxonomy: TaxOpt = "builtin") -> None:
    """Print the framework tree with concept counts per competence and language."""
    from taxonomy.load import load_taxonomy
    from taxonomy.model import LANGUAGES

    with _user_errors():
        tax = load_taxonomy(taxonomy)
    console.print(f"[bold]{tax.version}[/]: {len(tax.competences)} areas and competences, {len(tax.concepts)} concepts")
    for framework in tax.frameworks():
        console.print(f"\n[bold]{framework}[/]")
        for area in sorted((c for c in tax.areas.values() if c.framework == framework), key=lambda c: c.code):
            console.print(f"  {area.code} {area.label}")
            comps = [c for c in tax.competences.values() if c.area == area.id]
            for comp in sorted(comps, key=lambda c: [int(x) if x.isdigit() else x for x in c.code.split(".")]):
                concepts = tax.concepts_for(comp.id)
                per_lang = " ".join(f"{lang}:{sum(1 for c in concepts if c.labels_in(lang))}" for lang in LANGUAGES)
                console.print(
                    f"    {comp.code:<5} {comp.label[:60]:<60} {len(concepts):>4} concepts  {per_lang}", highlight=False
                )


@taxonomy_app.command("import-esco")
def taxonomy_import_esco(
    esco_dir: Annotated[
        Path,
        typer.Argument(help="Folder of the official ESCO CSV export (with skills_en.csv, or its parent with en/)."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write the taxonomy to (the documented format).")
    ] = Path("esco-taxonomy"),
    collection: Annotated[
        str, typer.Option(help="'digital' (ESCO digital + DigComp collections) or 'all' skills.")
    ] = "digital",
) -> None:
    """Build a taxonomy from the ESCO export; use it with --taxonomy OUT (or --taxonomy esco:DIR directly)."""
    from taxonomy.esco import import_esco

    with _user_errors():
        tax = import_esco(esco_dir, out, collection)
    console.print(
        f"Wrote {tax.version}: {len(tax.concepts)} concepts, {len(tax.competences)} areas and competences, to {out}"
    )


@taxonomy_app.command("validate")
def taxonomy_validate(
    path: Annotated[str, typer.Argument(help="A taxonomy folder, a concepts CSV, 'builtin' or 'esco:DIR'.")],
) -> None:
    """Check a taxonomy; print every problem with file, line and entry (exit 2 if any)."""
    from taxonomy.load import load_taxonomy

    with _user_errors():
        tax = load_taxonomy(path)
    console.print(f"OK: {tax.version}: {len(tax.competences)} areas and competences, {len(tax.concepts)} concepts")


def main() -> None:
    """Entry point of the `skillpulse` console script."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("skillpulse: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
