"""The ``invdesign`` command.

    invdesign run SPEC [--out DIR] [--workers N] [--scheduler ADDRESS]   run a campaign (then report)
    invdesign resume DIR [--workers N] [--scheduler ADDRESS]             continue a killed/stopped one
    invdesign report DIR [--design-figures]                               (re)write DIR/report.md
    invdesign list                                                        registered problems, optimizers
    invdesign export DIR [--format csv|parquet] [--out PATH] [--structures]   every evaluation as a table,
                                                                          best designs as JSON (+ .xyz with atoms)

``report`` and ``export`` read the stored files only (no problem is built, no campaign code runs), unless
``--design-figures`` / ``--structures`` ask for what only the problem's own code can make (README: "What is
trusted"). ``run`` and ``resume`` build the problems anyway, so their report includes the design figures.

SPEC is a TOML file, or the name of one shipped with the problems (``invdesign run default``: the
directories of the ``invdesign.problems`` entry points, see ``invdesign.registry``). Exit status:
0 when every run finished (runs that raised are listed, and recorded in ``runs/*/error.txt``), 2 for an
invalid spec or arguments, 1 when the campaign could not finish.
"""

from __future__ import annotations

import argparse
import errno
import math
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _spec_path(spec: str) -> Path:
    path = Path(spec)
    if path.exists() or path.suffix == ".toml":
        return path
    from invdesign.registry import find_spec_file  # a bare name: a spec shipped beside registered problems

    return find_spec_file(spec) or path


def design_figures(directory: Path) -> dict[str, list]:
    """Each problem's own ``plot_design(params, out_dir)`` on the best design found, where defined."""
    import torch

    from invdesign.campaign import registry
    from invdesign.report import best_runs, load

    data = load(directory)
    out: dict[str, list] = {}
    for problem, run in best_runs(data).items():
        if run is None or run.best_record is None:
            continue
        try:
            built = registry.make_problem(run.unit["problem_name"], dict(run.unit["problem_settings"]))
        except Exception as err:
            print(f"invdesign report: cannot build problem {problem!r} for its design plots: {err}", file=sys.stderr)
            continue
        plot = getattr(built, "plot_design", None)
        if plot is None:
            continue
        from invdesign.campaign.storage import sanitize

        target = directory / "figures" / f"design_{sanitize(problem)}"
        target.mkdir(parents=True, exist_ok=True)
        z = torch.tensor([float(v) for v in run.best_record["x"]], dtype=torch.float64)
        try:
            params = {k: v.detach() for k, v in built.to_params(z).items()}
            out[problem] = [Path(p) for p in (plot(params, target) or [])]
        except Exception as err:
            print(f"invdesign report: plot_design of {problem!r} failed: {type(err).__name__}: {err}", file=sys.stderr)
    try:  # multi-objective problems: the knee and the extremes of the front
        from invdesign.report.pareto_report import pareto_design_figures

        out.update(pareto_design_figures(directory, registry.make_problem))
    except Exception as err:
        print(f"invdesign report: Pareto design plots failed: {type(err).__name__}: {err}", file=sys.stderr)
    return out


def make_report(directory: Path, designs: bool) -> Path:
    """``report.md`` from the stored files; ``designs``: also the problems' own design figures (runs their code)."""
    from invdesign.report import write_report

    return write_report(directory, design_figures(directory) if designs else None)


def _finish(result: Any, report: bool) -> int:
    from invdesign.campaign.storage import SUMMARY_FILE, run_id

    directory = result.directory
    print(f"summary: {directory / SUMMARY_FILE}")
    causes: dict[str, list[str]] = {}
    for row in result.errors:
        rid = run_id(row["problem"], row["optimizer"], row["seed"])
        print(f"invdesign: run {rid} ended in error; details in {directory / 'runs' / rid / 'error.txt'}",
              file=sys.stderr)
        causes.setdefault(_error_cause(directory / "runs" / rid / "error.txt"), []).append(rid)
    if report:  # this process built the problems already: their design figures add no code to trust
        print(f"report:  {make_report(directory, designs=True)}")
    code = EXIT_OK
    if causes:
        print(f"invdesign: {len(result.errors)} of {len(result.rows)} runs ended in error:", file=sys.stderr)
        for cause, rids in causes.items():
            print(f"  {len(rids)} x {cause}  (e.g. {rids[0]})", file=sys.stderr)
        print(f"  fix the cause, then `invdesign resume --retry-errors {directory}`", file=sys.stderr)
        code = EXIT_FAILED
    if result.held:
        from invdesign.campaign.campaign import held_message

        print(f"invdesign: {len(result.held)} run(s) are leased by another host and were left alone:", file=sys.stderr)
        for held in result.held:
            print(f"  {held_message(held['run_id'], held)}", file=sys.stderr)
        print(f"  `invdesign resume --wait {directory}` waits for them; `--steal-leases` takes them over "
              "(only if nothing runs them on that host)", file=sys.stderr)
    if not result.complete:
        missing = [r for r in result.rows if r["status"] not in ("completed", "error")]
        print(f"invdesign: {len(missing)} run(s) did not finish; `invdesign resume {directory}` continues them",
              file=sys.stderr)
        code = EXIT_FAILED
    return code


def _error_cause(path: Path) -> str:
    """The last non-empty line of a run's error.txt (the exception, or why it stopped early)."""
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no error.txt)"
    return lines[-1][:300] if lines else "(empty error.txt)"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1: in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://host:8786 (the campaign "
                   "directory must be on a filesystem shared with every worker, at the same path)")
    p.add_argument("--lease-ttl", type=float, default=None, metavar="S",
                   help="seconds without heartbeat before another worker may take a unit over (default 60)")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar (the log file is still written)")
    leases = p.add_mutually_exclusive_group()
    leases.add_argument("--wait", action="store_true", help="wait for runs leased on another host however long "
                        "their lease lasts (default: wait only for leases expiring within 2 lease TTLs)")
    leases.add_argument("--steal-leases", action="store_true", help="take over runs leased on another host "
                        "(only when nothing runs them there: two writers would corrupt a run)")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    if args.workers < 1:
        raise SystemExit(f"invdesign: --workers must be >= 1; got {args.workers}")
    out: dict[str, Any] = {"workers": args.workers, "scheduler": args.scheduler, "progress": not args.quiet,
                           "foreign_leases": "wait" if args.wait else "steal" if args.steal_leases else "fail"}
    if args.lease_ttl is not None:
        if not (args.lease_ttl > 0 and math.isfinite(args.lease_ttl)):
            raise SystemExit(f"invdesign: --lease-ttl must be a positive number; got {args.lease_ttl}")
        out["lease_ttl_s"] = args.lease_ttl
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from invdesign.campaign import load_spec, run_campaign
    from invdesign.campaign.campaign import default_directory

    path = _spec_path(args.spec)
    spec = load_spec(path)
    options = _options(args)
    out = Path(args.out) if args.out else default_directory(spec)
    print(f"campaign {spec.name!r}: {len(spec.units())} runs -> {out}")
    result = run_campaign(spec, out, spec_file=path, **options)
    return _finish(result, not args.no_report)


def cmd_resume(args: argparse.Namespace) -> int:
    from invdesign.campaign import resume_campaign

    result = resume_campaign(Path(args.directory), retry_errors=args.retry_errors, **_options(args))
    return _finish(result, not args.no_report)


def cmd_report(args: argparse.Namespace) -> int:
    print(f"report: {make_report(Path(args.directory), designs=args.design_figures)}")
    if not args.design_figures:
        print("design figures: not made (they run each problem's own code; --design-figures makes them)")
    return EXIT_OK


def _built_problems(directory: Path) -> dict[str, Any]:
    """One built problem per problem label of the campaign (through the registry; failures are skipped)."""
    from invdesign.campaign import registry
    from invdesign.report import load

    out: dict[str, Any] = {}
    for run in load(directory).runs:
        if run.problem in out:
            continue
        try:
            out[run.problem] = registry.make_problem(run.unit["problem_name"], dict(run.unit["problem_settings"]))
        except Exception as err:
            print(f"invdesign export: cannot build problem {run.problem!r} ({err}); using its stored space",
                  file=sys.stderr)
    return out


def _write_structure(problem: Any, params: dict, stem: Path) -> Path | None:
    """The design's atoms as extended XYZ, for problems with ``design_structure(params) -> Structure``."""
    make = getattr(problem, "design_structure", None)
    if make is None:
        return None
    from invdesign.tb.ase_io import write_extxyz

    return write_extxyz(stem.with_suffix(".xyz"), make(params), comment=f"best design of {stem.name}")


def cmd_export(args: argparse.Namespace) -> int:
    from invdesign.report import ExportError, export_designs, export_table

    directory = Path(args.directory)
    problems = _built_problems(directory) if args.structures else {}  # else the spaces stored in settings.json
    try:
        table = export_table(directory, args.format, args.out, spaces={k: p.space for k, p in problems.items()})
    except ExportError as err:
        print(f"invdesign: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"evaluations: {table}")
    for path in export_designs(directory, problems, _write_structure):
        print(f"design: {path}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from invdesign.campaign import registry

    problems = registry.problem_registry()
    optimizers = registry.optimizer_registry()
    print("problems (name in [[problems]]; settings listed by `invdesign list --settings`):")
    width = max(map(len, problems), default=0)
    for name, factory in problems.items():
        print(f"  {name:<{width}}  {registry.describe_problem(name, factory)}")
        if args.settings:
            print(" " * (width + 4) + registry.problem_settings_line(factory))
    print("optimizers (name in [[optimizers]]; settings listed by `invdesign list --settings`):")
    width = max(map(len, optimizers), default=0)
    for name, cls in optimizers.items():
        print(f"  {name:<{width}}  {registry.describe(cls)}")
        if args.settings:
            settings = registry.optimizer_settings(name)
            print(" " * (width + 4) + (", ".join(f"{k}={v!r}" for k, v in settings.items()) or "(no settings)"))
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="invdesign", description="Inverse-design campaigns on the NEGF engine.")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a campaign from a TOML spec")
    run.add_argument("spec", help="TOML spec file, or the name of one in problems/ (e.g. default)")
    run.add_argument("--out", help="campaign directory (default results/<spec name>)")
    _common(run)
    run.set_defaults(func=cmd_run)
    resume = sub.add_parser("resume", help="continue a campaign directory")
    resume.add_argument("directory")
    resume.add_argument("--retry-errors", action="store_true", help="also rerun runs that ended in error")
    _common(resume)
    resume.set_defaults(func=cmd_resume)
    report = sub.add_parser("report", help="write report.md and figures in a campaign directory")
    report.add_argument("directory")
    report.add_argument("--design-figures", action="store_true", help="also each problem's own design figures "
                        "(builds the problems named in the campaign, i.e. runs their code: trusted campaigns only)")
    report.set_defaults(func=cmd_report)
    export = sub.add_parser("export", help="every evaluation as CSV/Parquet and the best designs as JSON")
    export.add_argument("directory")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv",
                        help="table format (parquet needs pyarrow: pip install 'invdesign[parquet]')")
    export.add_argument("--out", help="table path (default DIR/evaluations.<format>)")
    export.add_argument("--structures", action="store_true", help="also the designs' atoms (.xyz) and the "
                        "problems' current parameter spaces (builds the problems: trusted campaigns only)")
    export.set_defaults(func=cmd_export)
    lst = sub.add_parser("list", help="registered problems and optimizers")
    lst.add_argument("--settings", action="store_true",
                     help="also list each problem's and optimizer's settings (defaults, ranges)")
    lst.set_defaults(func=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from invdesign.campaign.spec import SpecError
    from invdesign.campaign.storage import StorageError

    try:
        return int(args.func(args))
    except SpecError as err:
        print(f"invdesign: {err}", file=sys.stderr)
        return EXIT_USAGE
    except StorageError as err:
        print(f"invdesign: {err}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as err:  # a read-only campaign directory: say which path, not a traceback
        if err.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        why = "read-only file system" if err.errno == errno.EROFS else "permission denied"
        print(f"invdesign: cannot write {err.filename or ''}: {why} ({err.strerror}); choose a writable --out "
              "directory or fix its permissions", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninvdesign: interrupted; `invdesign resume` continues where it stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
