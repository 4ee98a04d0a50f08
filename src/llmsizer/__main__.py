from llmsizer.cli import main

main()
