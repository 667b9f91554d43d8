"""`dynhp-export`: the command-line shell over `dynhp_tf.converters.export.export_model`.

Parses arguments, calls the library, prints progress, and maps each known error to a
one-line message and its own exit code (`EXIT_CODES`, documented in the README).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile

# Quiet TensorFlow's C++ start-up logs before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402

from dynhp_tf.converters.boards import UnknownBoardError, list_boards, load_board  # noqa: E402

# (exception class name, exit code, meaning). Names, not classes, so the table can be read
# without importing TensorFlow; order matters: the first matching class wins.
EXIT_CODES = (
    ("ModelFileNotFoundError", 3, "an input file (model, calibration, eval data) does not exist"),
    ("NotAKerasModelError", 4, "the model file is not a saved Keras model"),
    ("CorruptedModelError", 5, "the model file is damaged and cannot be loaded"),
    ("UnsupportedLayerError", 6, "the model has a layer the compact rebuild does not support"),
    ("UnknownBoardError", 7, "no profile for that board"),
    ("CalibrationShapeError", 8,
     "calibration or eval data do not match the model input, or are too few"),
    ("MissingCalibrationError", 9, "no calibration data given or found beside the model"),
    ("DoesNotFitError", 10, "the model is too large for the board"),
    ("OutputExistsError", 11, "the output directory exists (use --force)"),
    ("QuantizationCheckError", 12, "the flatbuffer's quantization is not what the board needs"),
    ("TFLMCheckError", 13, "the model does not run under TFLM on the host"),
    ("RebuildMismatchError", 14, "the compact model's outputs differ from the original's"),
    ("CalibrationValueError", 16,
     "calibration or eval data: NaN/inf, not floats, outside the training range, bad labels"),
    ("OutputNotWritableError", 17, "the output directory cannot be written"),
    ("NonFiniteWeightsError", 18, "a layer of the model has NaN or infinite weights"),
    ("ConversionError", 19, "the TFLite converter failed or crashed"),
    ("AgreementError", 20, "int8 top-1 agreement with the float model below --min-agreement"),
    ("WrongFrameworkError", 21, "the model file needs the other Keras (tf_keras or Keras 3)"),
    ("ExportError", 15, "any other export failure"),
)
EXIT_OK = 0
EXIT_USAGE = 2  # click's own code for bad arguments
EXIT_INTERRUPTED = 130  # the shell's code for a process stopped by Ctrl-C (128 + SIGINT)


def exit_code_for(error: BaseException) -> int | None:
    """The table's exit code for `error` (matched by class name along its MRO), or None."""
    names = [cls.__name__ for cls in type(error).__mro__]
    for name, code, _ in EXIT_CODES:
        if name in names:
            return code
    return None


@contextlib.contextmanager
def _native_stderr_captured():
    """Send file descriptor 2 to a temporary file while TensorFlow and its converter print
    their C++ logs (TF_CPP_MIN_LOG_LEVEL no longer silences them all). Yields the file so
    it can be replayed when something unexpected fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _ctrl_c_at_stage_boundaries():
    """Ctrl-C stops the export at its next stage (or before the output is moved into place).

    A KeyboardInterrupt raised wherever the signal lands can leave debris (inside `mkdtemp`,
    after the directory was made and before anything would remove it), or be dropped by a
    finalizer that happened to run ("Exception ignored in ..."). So the first Ctrl-C is only
    remembered and the export asks for it at points where stopping is clean; in a terminal the
    running child (converter, TFLM check, QEMU) gets the same Ctrl-C and ends at once. A second
    Ctrl-C raises at once.
    """
    pressed = []

    def on_sigint(signum, frame):
        pressed.append(signum)
        if len(pressed) > 1:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: bool(pressed)
    finally:
        signal.signal(signal.SIGINT, previous)


def _list_boards(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    for name in list_boards():
        click.echo(load_board(name).summary())
    ctx.exit(EXIT_OK)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", type=click.Path(dir_okay=False, path_type=str), required=True)
@click.option("--board", "board_name", required=True, help="Board profile (see --list-boards).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output directory [default: <model stem>-<board>].")
@click.option("--calibration", type=click.Path(dir_okay=False), default=None,
              help=".npy or .npz (array x) with float samples [n, *input_shape]; default: "
                   "<model stem>.calibration.npz beside the model.")
@click.option("--eval-data", type=click.Path(dir_okay=False), default=None,
              help=".npz with arrays x and y (integer labels) for float vs int8 accuracy.")
@click.option("--io", type=click.Choice(["int8", "float"]), default="int8", show_default=True,
              help="Type of the model's input and output tensors.")
@click.option("--head", type=click.Choice(["int8", "float"]), default="int8", show_default=True,
              help="float: compute a softmax classifier's last Dense layer in float32 (closer "
                   "agreement with the float model; about 3 more bytes per weight of that layer).")
@click.option("--runtime", type=click.Choice(["tflm", "c"]), default="tflm", show_default=True,
              help="c: also write the ahead-of-time C runtime (firmware_c/) and measure it "
                   "under QEMU mps2-an386.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--min-agreement", type=click.FloatRange(0, 100), default=97.0, show_default=True,
              help="Least top-1 agreement (percent) of the int8 model with the float model on "
                   "eval data, or else on calibration samples held out of calibration.")
@click.option("--list-boards", is_flag=True, is_eager=True, expose_value=False,
              callback=_list_boards, help="List the board profiles and exit.")
def main(model, board_name, out_dir, calibration, eval_data, io, head, force, runtime, min_agreement):
    """Rebuild MODEL's compact network, quantize it to int8, check it with TFLM on the
    host, check it fits the board, and write the model, report and firmware project."""
    error = None
    with _native_stderr_captured() as native_log, _ctrl_c_at_stage_boundaries() as interrupted:
        try:
            board = load_board(board_name)
            from dynhp_tf.converters.export import export_model  # imports TensorFlow

            result = export_model(
                model, board, out_dir=out_dir, calibration=calibration, eval_data=eval_data,
                io=io, head=head, force=force, min_agreement=min_agreement / 100, progress=click.echo, runtime=runtime,
                interrupted=interrupted,
            )
        except KeyboardInterrupt:
            error = KeyboardInterrupt()
        except Exception as caught:
            error = caught
            if exit_code_for(error) is None:  # unexpected: show what native code said
                native_log.seek(0)
                sys.stderr.write(native_log.read().decode(errors="replace"))
    if isinstance(error, KeyboardInterrupt) or (error is not None and interrupted()):  # e.g. the child died of it
        click.echo("dynhp-export: interrupted; nothing written", err=True)
        raise SystemExit(EXIT_INTERRUPTED)
    if error is not None:
        code = exit_code_for(error)
        if code is None:
            raise error
        click.echo(f"dynhp-export: error: {error}", err=True)
        raise SystemExit(code)
    click.echo(f"wrote {', '.join(result.files)}")
    click.echo((result.out_dir / "report.md").read_text())


if __name__ == "__main__":
    main()
