"""`python -m podline` is the `podline` console script."""

from podline import cli

raise SystemExit(cli.main())
