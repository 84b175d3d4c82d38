from forecast_cli.cli import main

main()
