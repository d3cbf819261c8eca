"""Making a trained network cheap to run, one idea per module.

* :mod:`~trackers.inference.precision`: which arithmetic (fp32, bf16, fp16, int8) on which device;
* :mod:`~trackers.inference.batchnorm`: batch norm folded into the convolutions;
* :mod:`~trackers.inference.crops`: a frame's square crops as batches on the network's device;
* :mod:`~trackers.inference.int8`: int8 twins of the embedding's blocks and their calibration;
* :mod:`~trackers.inference.embedding`: the embedding as a tracker runs it on every frame.

All are pure speed measures; ``siamtrack eval`` decides whether they are kept (bf16 is
the default on a CPU only while its AUC stays within 0.005 of fp32, see README).

int8 is the CPU default where the CPU has int8 dot products. Checked
with ``siamtrack eval --tracker siamfc-3s --set precision=int8`` against ``fp32`` on the five
held-out sequences in ``../shared/data/sequences`` (Dog1, Subway, Jogging-1, Jogging-2,
bag): mean AUC 0.6890 against 0.6904 (-0.0014), Dog1 +0.003, Subway +0.001, no sequence
more than 0.008 off. What did not pay on the 2-core AVX512 EPYC, measured: TorchScript
trace + freeze (+ optimize_for_inference) 0.95-0.99x of eager, conv2/4/5 ungrouped 0.9x
or split in two 0.75x, since oneDNN runs the grouped convs at the machine's bf16 peak
already (about 220 GMAC/s); so the eager modules stay.
"""
