"""`ovchat bench`: engines side by side, each in its own subprocess.

runner.py   bench(): prompts, subprocesses, medians, ratios, targets
worker.py   one engine measured inside its subprocess (ovchat, optimum-intel, torch, llama.cpp)
report.py   tables (terminal, Markdown) and the chart
machine.py  CPU, flags, versions
lookalikes.py  random-weight models shaped like real ones (`--shape`)
"""
