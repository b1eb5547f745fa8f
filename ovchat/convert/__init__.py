"""Getting models into OpenVINO IR (needs the `export` extra: torch, transformers,
optimum-intel, nncf).

    recipe.py   Recipe: what to ask optimum-intel/nncf for (no heavy imports)
    export.py   export(): HF id/dir or GGUF → IR dir with a manifest, atomically
    gguf.py     GGUF → Hugging Face dir (weights via transformers, tokenizer from metadata)
"""
