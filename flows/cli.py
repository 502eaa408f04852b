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

SourceOpt = Annotated[str | None, typer.Option("--source", "-s", help="Sources file (YAML/TOML) or one JSONL/CSV/Parquet file. Default: the bundled sample ads.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder for the datasets and reports.")]
TaxOpt = Annotated[str, typer.Option("--taxonomy", "-t", help="'builtin', 'esco:DIR', a taxonomy folder or a concepts CSV.")]
MonthsOpt = Annotated[list[str] | None, typer.Option("--months", "-m", help="Only these months (YYYY-MM); repeat or comma-separate. Default: all.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's log lines.")]


def _months(values: list[str] | None) -> tuple[str, ...]:
    return tuple(m.strip() for v in values or [] for m in v.split(",") if m.strip())


def _fail(message: str) -> None:
    err_console.print(f"[bold red]skillpulse: error:[/] {message}", highlight=False, soft_wrap=True)
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
        err_console.print(f"[bold red]skillpulse: internal error:[/] {type(exc).__name__}: {exc}\n"
                          "  (a bug, not your input: run again with --verbose for the traceback and report it)",
                          highlight=False)
        raise typer.Exit(code=1) from None


def _settings(source: str | None, out: Path, taxonomy: str, months: list[str] | None) -> PipelineSettings:
    return PipelineSettings(source=source, out_dir=str(out), taxonomy=taxonomy, months=_months(months))


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
    out: OutOpt = Path("skillpulse-data"),
    taxonomy: TaxOpt = "builtin",
    months: MonthsOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run the whole pipeline (ingest, extract, aggregate, report) as Prefect flows.

    With no options it runs on the bundled sample ads into ./skillpulse-data.
    """
    def body() -> dict[str, Any]:
        settings = _settings(source, out, taxonomy, months)
        from flows.checks import preflight

        preflight(settings)
        from flows.pipeline import pipeline_flow

        return pipeline_flow(settings)

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
def ingest(source: SourceOpt = None, out: OutOpt = Path("skillpulse-data"), months: MonthsOpt = None,
           verbose: VerboseOpt = False) -> None:
    """Read sources into postings/ (by month) and quarantine/ (by source)."""
    def body() -> dict[str, Any]:
        from flows.checks import preflight

        settings = _settings(source, out, "builtin", months)
        preflight(settings, need_taxonomy=False)
        from flows.ingest import ingest_flow
        from flows.pipeline import new_run_id

        return ingest_flow(settings, new_run_id())

    result = _run_stage("ingest", body, verbose)
    console.print(f"Ingested: {result['counts']}; months: {', '.join(result['months'])}")


def _stage_command(name: str, module: str, flow_name: str, doc: str) -> None:
    def command(out: OutOpt = Path("skillpulse-data"), taxonomy: TaxOpt = "builtin", months: MonthsOpt = None,
                verbose: VerboseOpt = False) -> None:
        def body() -> dict[str, Any]:
            import importlib

            from flows.pipeline import new_run_id

            settings = _settings(None, out, taxonomy, months)
            if not (Path(settings.out_dir) / "postings").is_dir():
                raise SkillpulseError(f"[O002] {out} has no postings/: run 'skillpulse ingest' first")
            stage = getattr(importlib.import_module(module), flow_name)
            return stage(settings, new_run_id())

        result = _run_stage(name, body, verbose)
        console.print(f"{name}: {', '.join(f'{k}={v}' for k, v in result.items() if k != 'by_month')}")

    command.__doc__ = doc
    app.command(name=name)(command)


_stage_command("extract", "flows.extract", "extract_flow", "Find skill mentions in postings/ and write mentions/.")
_stage_command("aggregate", "flows.aggregate", "aggregate_flow", "Count demand from postings/ and mentions/ into demand/.")
_stage_command("report", "flows.report", "report_flow", "Write the monthly reports (HTML + CSV) from demand/.")


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
                console.print(f"    {comp.code:<5} {comp.label[:60]:<60} {len(concepts):>4} concepts  {per_lang}", highlight=False)


@taxonomy_app.command("validate")
def taxonomy_validate(path: Annotated[str, typer.Argument(help="A taxonomy folder, a concepts CSV, 'builtin' or 'esco:DIR'.")]) -> None:
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
