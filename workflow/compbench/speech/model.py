"""Conformer-CTC: convolutional 4x subsampling -> torchaudio.models.Conformer -> linear CTC head.

torchaudio's ConformerLayer calls ``self_attn(query, key, value, key_padding_mask, need_weights)``
on an ``nn.MultiheadAttention`` whose q/k/v projection is one fused parameter. We swap in
:class:`SelfAttention`, the same computation with four separate ``nn.Linear`` (q, k, v, out),
initialised from the MHA's own weights (identical outputs), so that LR-SMS can factorise and
MSRS can mask every projection like any other linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"speech.model.d_model={dim} must be divisible by num_heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    @classmethod
    def from_mha(cls, mha: nn.MultiheadAttention) -> "SelfAttention":
        d = mha.embed_dim
        new = cls(d, mha.num_heads, mha.dropout)
        with torch.no_grad():
            for i, lin in enumerate((new.q, new.k, new.v)):
                lin.weight.copy_(mha.in_proj_weight[i * d : (i + 1) * d])
                lin.bias.copy_(mha.in_proj_bias[i * d : (i + 1) * d])
            new.out.weight.copy_(mha.out_proj.weight)
            new.out.bias.copy_(mha.out_proj.bias)
        return new

    def forward(self, query, key, value, key_padding_mask=None, need_weights=False):
        T, B, D = query.shape  # (time, batch, dim), as nn.MultiheadAttention
        h = self.heads

        def split(x):
            return x.reshape(x.shape[0], B, h, D // h).permute(1, 2, 0, 3)  # B, h, T, d

        q, k, v = split(self.q(query)), split(self.k(key)), split(self.v(value))
        mask = None
        if key_padding_mask is not None:  # True = padding
            mask = (~key_padding_mask)[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        y = y.permute(2, 0, 1, 3).reshape(T, B, D)
        return self.out(y), None


class Subsample(nn.Module):
    """Two stride-2 3x3 convolutions (4x in time and frequency) + linear to d_model."""

    def __init__(self, n_mels: int, channels: int, d_model: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, channels, 3, 2), nn.ReLU(), nn.Conv2d(channels, channels, 3, 2), nn.ReLU())
        f = ((n_mels - 1) // 2 - 1) // 2
        self.proj = nn.Linear(channels * f, d_model)

    @staticmethod
    def out_lengths(lengths: torch.Tensor) -> torch.Tensor:
        return ((lengths - 1) // 2 - 1) // 2

    def forward(self, x, lengths):
        y = self.conv(x.unsqueeze(1))  # B, C, T', F'
        b, c, t, f = y.shape
        return self.proj(y.permute(0, 2, 1, 3).reshape(b, t, c * f)), self.out_lengths(lengths)


class ConformerCTC(nn.Module):
    def __init__(
        self,
        n_mels: int,
        vocab_size: int,
        d_model: int,
        num_heads: int,
        ffn_dim: int,
        num_layers: int,
        conv_kernel: int,
        subsample_channels: int,
        dropout: float,
    ):
        super().__init__()
        from torchaudio.models import Conformer

        self.subsample = Subsample(n_mels, subsample_channels, d_model)
        self.encoder = Conformer(
            input_dim=d_model,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            num_layers=num_layers,
            depthwise_conv_kernel_size=conv_kernel,
            dropout=dropout,
        )
        for layer in self.encoder.conformer_layers:
            layer.self_attn = SelfAttention.from_mha(layer.self_attn)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, feats, lengths):
        x, lengths = self.subsample(feats, lengths)
        lengths = lengths.clamp(min=1)
        x, lengths = self.encoder(x, lengths)
        return self.head(x).log_softmax(-1), lengths


def build(spec: dict, n_mels: int, vocab_size: int) -> ConformerCTC:
    return ConformerCTC(
        n_mels=n_mels,
        vocab_size=vocab_size,
        d_model=spec["d_model"],
        num_heads=spec["num_heads"],
        ffn_dim=spec["ffn_dim"],
        num_layers=spec["num_layers"],
        conv_kernel=spec["conv_kernel"],
        subsample_channels=spec["subsample_channels"],
        dropout=spec["dropout"],
    )


def target_linears(model: ConformerCTC) -> dict[str, tuple]:
    """The linears LR-SMS factorises and MSRS masks: per Conformer block, attention q/k/v/out
    (``kind='attn'``) and both feed-forward modules' two linears (``kind='ff'``).
    name -> (kind, layer index, parent module, attribute name or index)."""
    out = {}
    for i, layer in enumerate(model.encoder.conformer_layers):
        for a in ("q", "k", "v", "out"):
            out[f"encoder.conformer_layers.{i}.self_attn.{a}"] = ("attn", i, layer.self_attn, a)
        for ffn in ("ffn1", "ffn2"):
            seq = getattr(layer, ffn).sequential
            for j, m in enumerate(seq):
                if isinstance(m, nn.Linear) or getattr(m, "linear_like", False):
                    out[f"encoder.conformer_layers.{i}.{ffn}.sequential.{j}"] = ("ff", i, seq, j)
    return out


def get_child(parent, key):
    return parent[key] if isinstance(key, int) else getattr(parent, key)


def set_child(parent, key, module):
    if isinstance(key, int):
        parent[key] = module
    else:
        setattr(parent, key, module)


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """CTC best path: argmax per frame, merge repeats, drop blanks (index 0)."""
    best = log_probs.argmax(-1).cpu()
    out = []
    for b, n in enumerate(lengths.cpu().tolist()):
        seq, prev = [], None
        for t in best[b, :n].tolist():
            if t != prev and t != 0:
                seq.append(t)
            prev = t
        out.append(seq)
    return out
