"""Write the student of an aligner / distiller in the official PE layout when training ends."""
import os.path as osp

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ExportStudentHook(Hook):
    """After training, write ``<work_dir>/<filename>`` with the student in the official layout."""

    priority = 'VERY_LOW'

    def __init__(self, filename: str = 'student_official.pt'):
        self.filename = filename

    def after_train(self, runner) -> None:
        from pe_dense.models.backbones.checkpoint import save_state_dict
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'student_state_dict'):
            raise TypeError(f'ExportStudentHook needs a SpatialAligner/SpatialDistiller, got '
                            f'{type(model).__name__}')
        sd = {k: v.detach().cpu() for k, v in model.student_state_dict().items()}
        path = osp.join(runner.work_dir, self.filename)
        save_state_dict(sd, path, layout='official')
        runner.logger.info(f'ExportStudentHook: student saved to {path}')
