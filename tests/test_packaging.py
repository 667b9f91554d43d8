"""One top-level package, one export face, one module of exit-code errors."""
import inspect
import pathlib

import dynhp_tf
import dynhp_tf.converters
from dynhp_tf.converters import cli, errors

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_deploy_side_resolves_to_this_checkout_inside_dynhp_tf():
    # Not another install's copy (an editable install elsewhere maps the same names).
    import dynhp_tf.boards
    import dynhp_tf.firmware
    for module, folder in ((dynhp_tf.converters, "converters"), (dynhp_tf.boards, "boards"),
                           (dynhp_tf.firmware, "firmware")):
        assert pathlib.Path(module.__file__).parent == REPO / folder


def test_export_face_is_the_exporter_itself():
    from dynhp_tf.converters.export import export_model
    from dynhp_tf.export import ExportError, ExportResult, list_boards
    import dynhp_tf.export as face
    assert face.export_model is export_model is dynhp_tf.export_model
    assert dynhp_tf.ExportResult is ExportResult and dynhp_tf.ExportError is errors.ExportError
    assert issubclass(errors.RebuildMismatchError, ExportError)
    assert "esp32" in list_boards()


def test_every_exit_code_class_lives_in_errors_and_is_an_export_error():
    defined = {name: cls for name, cls in inspect.getmembers(errors, inspect.isclass)
               if cls.__module__ == errors.__name__}
    # UnsupportedLayerError: raised by the training side too, which never imports converters.
    mapped = {name for name, _, _ in cli.EXIT_CODES} - {"UnsupportedLayerError"}
    assert mapped <= set(defined), mapped - set(defined)
    assert all(issubclass(cls, errors.ExportError) for cls in defined.values())
    codes = [code for _, code, _ in cli.EXIT_CODES]
    assert len(codes) == len(set(codes))
