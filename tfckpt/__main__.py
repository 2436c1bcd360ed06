from tfckpt.cli import main

main()
