"""The export API in one import: what `dynhp-export` does, as a library call.

A face over the deploy side (`dynhp_tf.converters`), so library users need not know its
module layout. No training-side module imports it (it loads TensorFlow and the converter), so
the dependency stays one way: deploy uses training, never the reverse.

Example:
    >>> from dynhp_tf.export import ExportError, export_model, list_boards
    >>> list_boards()
    ['esp32', 'esp32s3', 'nano33ble']
    >>> result = export_model("lenet.h5", "esp32", calibration="calib.npy")
    >>> result.report["tflm"]["arena_bytes"]  # the arena TFLM needed on the host
    >>> result.out_dir / "firmware"           # the PlatformIO project

Every failure raises a subclass of `ExportError` (all in `dynhp_tf.converters.errors`) with a
one-line message, or `dynhp_tf.groups.UnsupportedLayerError` for a layer the compact rebuild
does not support (`dynhp_tf.converters.cli.EXIT_CODES` gives the CLI's exit code per class).
"""

from dynhp_tf.converters.boards import Board, list_boards, load_board
from dynhp_tf.converters.errors import ExportError
from dynhp_tf.converters.export import ExportResult, export_model

__all__ = ["Board", "ExportError", "ExportResult", "export_model", "list_boards", "load_board"]
