"""Getting models into OpenVINO IR. Hugging Face models and GGUF files of other architectures
need the `export` extra (torch, transformers, optimum-intel, nncf); llama/qwen2/qwen3 GGUF
files need only the runtime.

    recipe.py      Recipe: what to ask optimum-intel/nncf for (no heavy imports)
    export.py      export(): HF id/dir or GGUF → IR dir with a manifest, atomically
    gguf_genai.py  GGUF → IR through openvino-genai's own reader (the runtime alone)
    gguf_ir.py     each weight of that IR checked against the GGUF; exact blocks where needed
    gguf_blocks.py every common GGUF type's blocks as OpenVINO's (q - z) * scale form
    gguf.py        GGUF → Hugging Face dir (weights via transformers, tokenizer from metadata)
    gguf_exact.py  the GGUF's Q4_0/Q4_1/Q8_0 blocks in an optimum-made IR (transformers route)
"""
