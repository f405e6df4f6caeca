from codetool.console import main

main()
