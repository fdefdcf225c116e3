from pyflow.cli.main import main

main()
