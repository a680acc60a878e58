from loadmgr.cli.main import run

run()
