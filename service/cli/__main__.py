"""`python -m service.cli`: the same as the `convintel` command."""

from service.cli import app

app()
