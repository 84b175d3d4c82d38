from forecast_cli.cli import app

app()
