"""The forkserver's fast exit (nsgen.engine.fastexit)."""

from __future__ import annotations

from nsgen.engine import fastexit


def test_in_forkserver_only_below_the_forkserver_loop() -> None:
    """True for a frame called (at any depth) from a function ``main`` of the module
    ``multiprocessing.forkserver``; False elsewhere (this process: no exit handler)."""
    def nested() -> bool:
        return fastexit.in_forkserver()

    scope = {"__name__": "multiprocessing.forkserver", "nested": nested}
    exec(compile("def main():\n    return nested()\n\ndef other():\n    return nested()\n",
                 "<forkserver>", "exec"), scope)
    assert scope["main"]() is True
    assert scope["other"]() is False
    assert fastexit.in_forkserver() is False
    elsewhere = {"__name__": "somewhere.else", "nested": nested}
    exec(compile("def main():\n    return nested()\n", "<other>", "exec"), elsewhere)
    assert elsewhere["main"]() is False


def test_engine_preloads_fastexit_last(monkeypatch) -> None:
    """The forkserver imports it after every other preload (its exit handler runs first)."""
    from nsgen.engine.pipeline import Engine

    seen: list[list[str]] = []
    engine = Engine(1, preload=("nsgen.modes.raw",))
    monkeypatch.setattr(engine._ctx, "set_forkserver_preload", seen.append)
    monkeypatch.setattr(engine, "_start_processes", lambda: None)
    engine.start()
    engine.close()
    assert seen == [["nsgen.engine.gcpause", "nsgen.engine.pipeline", "numpy", "nsgen.modes.raw",
                     "nsgen.engine.preload", "nsgen.engine.fastexit"]]
