"""Engine stages shared by the modes and the commands: scans in, scratch volumes, output.

* :mod:`~nsgen.stages.scan_source` - how a process opens a scan (picklable), read-ahead hints;
* :mod:`~nsgen.stages.scan_stages` - passes over detector-row chunks of a scan;
* :mod:`~nsgen.stages.scan_sizing` - chunking of those passes;
* :mod:`~nsgen.stages.decompress` - a once-decompressed copy of a compressed scan;
* :mod:`~nsgen.stages.stripes` - the stripe pipeline (candidates, merge, flags);
* :mod:`~nsgen.stages.robust` - the robust detector's passes over a scan, with its scratch
  (:mod:`~nsgen.stages.robust_scratch`) and chunking (:mod:`~nsgen.stages.robust_sizing`);
* :mod:`~nsgen.stages.fused` - two passes on one read of a scan;
* :mod:`~nsgen.stages.write` - scratch-volume passes and the one write stage.
"""
