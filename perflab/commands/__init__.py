"""One module per subcommand (the memray pattern). Each module defines:

    NAME: str                      the verb on the command line
    HELP: str                      one line for `perflab --help`
    prepare_parser(parser) -> None add the verb's arguments
    run(args) -> int               do it; raise PerflabError for user mistakes

Add a new verb by writing its module and naming it here.
"""

COMMANDS: tuple[str, ...] = (
    "ingest",
    "sources",
    "k6",
    "pgtop",
    "export",
    "snakeviz",
    "top",
    "run",
    "runs",
    "categories",
    "bench_writes",
    "compare",
    "log",
    "doctor",
    "nightly",
    "report",
)
