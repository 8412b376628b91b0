from invariance_lab.cli.main import main

main()
