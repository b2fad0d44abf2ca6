"""Word start times of an espeak-ng synthesis, from the library's own WORD events.

espeak-ng's C API (speak_lib.h) calls a synthesis callback with the audio and a list of events; a
WORD event carries the sample index at which a word starts. The library keeps state from one text
to the next (a second synthesis in the same process can differ from the program's output by a few
hundred samples), so every text is synthesised in a fresh process: ``python espeak_lib.py voice
speed pitch gap text`` prints ``{"sr": .., "n_samples": .., "words": [[text position, sample], ..]}``
(text position: 1-based character index of the word's start in ``text``), and the corpus checks
that ``n_samples`` equals the length of the espeak-ng program's audio for the same arguments.
Standard library only (ctypes), so the child starts fast.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import sys

EV_LIST_TERMINATED, EV_WORD = 0, 1
RATE, PITCH, WORDGAP = 1, 3, 7
AUDIO_OUTPUT_SYNCHRONOUS, POS_CHARACTER = 2, 1
SYNTH_FLAGS = 0x1000 | 0x100  # espeakENDPAUSE | espeakPHONEMES: the espeak-ng program's defaults


class Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


class Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


def word_starts(text: str, voice: str, speed: int, pitch: int, gap: int) -> dict:
    name = ctypes.util.find_library("espeak-ng")
    if name is None:
        raise RuntimeError("the espeak-ng library (libespeak-ng, Debian package espeak-ng) was not found")
    lib = ctypes.CDLL(name)
    sr = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
    if sr <= 0:
        raise RuntimeError(f"espeak-ng library {name} failed to initialise ({sr})")
    state = {"n": 0, "words": []}

    def callback(wav, n, events):
        state["n"] += max(0, n) if wav else 0
        i = 0
        while events[i].type != EV_LIST_TERMINATED:
            if events[i].type == EV_WORD:
                state["words"].append((int(events[i].text_position), int(events[i].sample)))
            i += 1
        return 0

    cb = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))(callback)
    lib.espeak_SetSynthCallback(cb)
    # as the program does: a voice name, else the string as a language (e.g. en-gb+m1)
    if (
        lib.espeak_SetVoiceByName(voice.encode()) != 0
        and lib.espeak_SetVoiceByProperties(ctypes.byref(Voice(languages=voice.encode()))) != 0
    ):
        raise RuntimeError(f"espeak-ng library: no voice {voice!r}")
    for key, val in ((RATE, speed), (PITCH, pitch), (WORDGAP, gap)):
        lib.espeak_SetParameter(key, int(val), 0)
    buf = text.encode() + b"\0"
    rc = lib.espeak_Synth(buf, len(buf), 0, POS_CHARACTER, 0, SYNTH_FLAGS, None, None)
    lib.espeak_Synchronize()
    if rc != 0:
        raise RuntimeError(f"espeak-ng library synthesis failed for voice {voice!r} (code {rc})")
    return {"sr": int(sr), "n_samples": state["n"], "words": state["words"]}


if __name__ == "__main__":
    voice, speed, pitch, gap, text = sys.argv[1:6]
    print(json.dumps(word_starts(text, voice, int(speed), int(pitch), int(gap))))
