"""end_distributed: a distributed tool run leaves the process group after a barrier and ends the
process with code 0 without interpreter teardown (where gloo can abort a finished run), with its
logs flushed; without a process group it does nothing."""
import logging
import os

import torch.distributed as dist
import torch.multiprocessing as mp

from pe_dense.engine.cpu_distributed import end_distributed
from tests.test_contrastive_loss import _free_port


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    log = logging.getLogger(f'end_distributed_{rank}')
    log.addHandler(logging.FileHandler(os.path.join(out_dir, f'rank{rank}.log')))
    log.warning('trained')
    end_distributed()
    open(os.path.join(out_dir, f'after{rank}'), 'w').close()  # never reached


def test_distributed_run_ends_cleanly_at_once(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2)  # raises unless exit 0
    for rank in (0, 1):
        assert (tmp_path / f'rank{rank}.log').read_text() == 'trained\n'
        assert not (tmp_path / f'after{rank}').exists()


def test_without_a_process_group_nothing_happens():
    assert not dist.is_initialized()
    end_distributed()  # returns: the in-process tools tests keep running after it
