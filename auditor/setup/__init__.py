"""The setup stage: sources -> setup graph + model identity -> plan.

A setup is the set of files that train one model together. Links between files (a script's
`from_pretrained("./path")`, a launch command naming its recipe, a recipe's `output_dir`) make
it span directories; `links.py` finds the edges, `graph.py` groups sources along them, and
`hfargs.py` knows which keys HfArgumentParser accepts.
"""
