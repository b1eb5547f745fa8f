"""Tiny random-weight models of the rerank and speech kinds, built locally (no hub): a BERT
cross-encoder (one relevance logit) and a Whisper with a byte-level BPE tokenizer trained
on CPython's docs and Whisper's special tokens in Whisper's order."""

from __future__ import annotations

import shutil
from pathlib import Path

WHISPER_LANGUAGES = ("en", "de", "fr")
MAX_LENGTH = 32  # tokens a transcription may take, its 4-token prefix included: fast tests


def build_tiny_cross_encoder(bert_hf: Path, out: Path) -> Path:
    """The tiny BERT's tokenizer and widths as a BertForSequenceClassification with one
    label (a reranker), its random weights wide enough that scores spread out."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    cfg = BertConfig.from_pretrained(bert_hf)
    cfg.num_labels = 1
    cfg.architectures = ["BertForSequenceClassification"]
    cfg.initializer_range = 0.2  # the default 0.02 scores every pair alike
    torch.manual_seed(1)
    BertForSequenceClassification(cfg).eval().save_pretrained(out)
    AutoTokenizer.from_pretrained(bert_hf).save_pretrained(out)
    return out


def _special_tokens() -> list[str]:
    langs = [f"<|{lang}|>" for lang in WHISPER_LANGUAGES]
    control = ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
               "<|nospeech|>", "<|notimestamps|>"]  # fmt: skip
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]  # right after <|notimestamps|>
    return ["<|endoftext|>", "<|startoftranscript|>", *langs, *control, *stamps]


def build_tiny_whisper(out: Path, lines: list[str]) -> Path:
    """A 2+2-layer Whisper (d_model 64, 80 mel bins), its tokenizer, feature extractor and a
    generation config with the ids openvino-genai's WhisperPipeline reads."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    shutil.rmtree(out, ignore_errors=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=800, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(lines[:3000], trainer)
    tok.add_special_tokens(_special_tokens())
    ids = tok.token_to_id
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    hf_tok = WhisperTokenizerFast(
        tokenizer_object=tok, unk_token="<|endoftext|>", bos_token="<|endoftext|>",
        eos_token="<|endoftext|>", pad_token="<|endoftext|>",
    )  # fmt: skip
    hf_tok.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out)
    cfg = WhisperConfig(
        vocab_size=len(hf_tok), num_mel_bins=80, d_model=64, encoder_layers=2,
        decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=128, decoder_ffn_dim=128, max_source_positions=1500,
        max_target_positions=448, pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
        decoder_start_token_id=sot, begin_suppress_tokens=[], suppress_tokens=[],
        init_std=0.2,  # wide enough that greedy decoding does not repeat one token
    )  # fmt: skip
    torch.manual_seed(0)
    WhisperForConditionalGeneration(cfg).eval().save_pretrained(out)
    GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        max_length=MAX_LENGTH, is_multilingual=True,
        lang_to_id={f"<|{lang}|>": ids(f"<|{lang}|>") for lang in WHISPER_LANGUAGES},
        task_to_id={"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"), prev_sot_token_id=ids("<|startofprev|>"),
        begin_suppress_tokens=[], suppress_tokens=[], max_initial_timestamp_index=50,
        alignment_heads=[[1, 0]],
    ).save_pretrained(out)  # fmt: skip
    return out
