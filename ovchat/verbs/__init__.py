"""One module per CLI verb: each has `add_arguments(parser)` and a thin `main(args)` over a
library function (`FLAGS` maps the library's parameter names to the verb's flags)."""
