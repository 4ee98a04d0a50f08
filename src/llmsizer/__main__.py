from llmsizer.entry import main

main()
