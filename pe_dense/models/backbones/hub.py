"""Checkpoints by name: Hugging Face Hub, timm's hub repos and http(s) URLs, resolved to a file.

Accepted names (anything else is a local path):

- ``hf://facebook/PE-Spatial-G14-448:PE-Spatial-G14-448.pt``: repo and file, the form of the
  official ``fetch_pe_checkpoint`` (perception_models, ``core/vision_encoder/config.py``);
- ``hf-hub:facebook/PE-Spatial-G14-448``: the file is implied, ``<repo name>.pt`` as the
  official code implies it (``hf-hub:timm/...`` repos follow timm's rule below);
- ``timm/vit_pe_spatial_gigantic_patch14_448.fb``: a timm pretrained tag; its repo is the
  tag's ``hf_hub_id`` and its file ``model.safetensors``, else ``pytorch_model.bin``, the order
  timm's ``load_state_dict_from_hf`` tries;
- ``http://`` / ``https://``: downloaded once into torch hub's ``checkpoints`` folder, the cache
  MMEngine's own http loader uses.

Hub files go through ``huggingface_hub.hf_hub_download`` into the standard Hugging Face cache
(``HF_HOME`` / ``HF_HUB_CACHE``), so ``HF_HUB_OFFLINE=1`` works with a filled cache. Nothing is
registered on import: ``register_checkpoint_schemes()`` makes MMEngine's ``load_from`` and
``load_checkpoint`` accept the same names (the project's tools call it).
"""
import os
from typing import List, Tuple

from .checkpoint import CheckpointError

HF_PREFIXES = ('hf://', 'hf-hub:')
TIMM_PREFIX = 'timm/'
URL_PREFIXES = ('http://', 'https://')
# timm's HF_SAFE_WEIGHTS_NAME then HF_WEIGHTS_NAME (timm/models/_hub.py)
TIMM_FILES = ('model.safetensors', 'pytorch_model.bin')


class CheckpointNameError(CheckpointError):
    """A checkpoint name that cannot be resolved; the message names the repo and file."""


def is_checkpoint_name(path: str) -> bool:
    """True for the hub / timm / URL forms above (a local file of that name wins)."""
    return isinstance(path, str) and not os.path.isfile(path) and \
        path.startswith(HF_PREFIXES + (TIMM_PREFIX, ) + URL_PREFIXES)


def parse_hub_name(name: str) -> Tuple[str, List[str]]:
    """``(repo_id, candidate files in order)`` of an ``hf://``, ``hf-hub:`` or ``timm/`` name."""
    if name.startswith(TIMM_PREFIX):
        return _timm_repo(name[len(TIMM_PREFIX):])
    prefix = next(p for p in HF_PREFIXES if name.startswith(p))
    repo, sep, filename = name[len(prefix):].partition(':')
    if repo.count('/') != 1 or not all(repo.split('/')) or (sep and not filename):
        raise CheckpointNameError(
            f'{name!r}: expected {prefix}ORG/REPO[:FILE], e.g. '
            'hf://facebook/PE-Spatial-G14-448:PE-Spatial-G14-448.pt or '
            'hf-hub:facebook/PE-Spatial-G14-448')
    if filename:
        return repo, [filename]
    org, repo_name = repo.split('/')
    if org == 'timm':
        return _timm_repo(repo_name)
    return repo, [f'{repo_name}.pt']


def _timm_repo(tag: str) -> Tuple[str, List[str]]:
    """timm's hub repo and file order for a pretrained tag (``vit_..._448.fb``)."""
    import timm
    try:
        cfg = timm.models.get_pretrained_cfg(tag) if '.' in tag else None
    except RuntimeError as err:  # a registered model with an unknown tag
        known = ', '.join(timm.list_pretrained(tag.split('.')[0] + '.*'))
        raise CheckpointNameError(f'timm/{tag}: {err} Known tags: {known}') from err
    repo = (cfg.hf_hub_id if cfg is not None and cfg.hf_hub_id else f'timm/{tag}')
    if cfg is not None and cfg.hf_hub_filename:
        return repo, [cfg.hf_hub_filename]
    return repo, list(TIMM_FILES)


def resolve_checkpoint(path: str) -> str:
    """A local file for ``path``: itself when it exists, else the downloaded / cached file."""
    if not is_checkpoint_name(path):
        return path
    if path.startswith(URL_PREFIXES):
        return _download_url(path)
    repo, files = parse_hub_name(path)
    return _hub_download(path, repo, files)


def _hub_download(name: str, repo: str, files: List[str]) -> str:
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError
    for filename in files:
        try:
            return hf_hub_download(repo_id=repo, filename=filename)
        except EntryNotFoundError:  # not in the repo, or offline and not cached: try the next
            continue
        except RepositoryNotFoundError as err:
            raise CheckpointNameError(
                f'{name}: Hugging Face repo {repo} not found (private or gated repos need '
                f'`hf auth login` first)') from err
    wanted = ' or '.join(files)
    offline = constants.is_offline_mode()
    raise CheckpointNameError(
        f'{name}: file {wanted} of Hugging Face repo {repo} is not in the cache '
        f'({constants.HF_HUB_CACHE}) and could not be downloaded'
        + (' (HF_HUB_OFFLINE=1)' if offline else ' (no network, or no such file in the repo)')
        + f'. Download it once where there is network: `hf download {repo} {files[0]}` '
        f'(older huggingface_hub: `huggingface-cli download {repo} {files[0]}`)'
        + ('; or unset HF_HUB_OFFLINE to download it now.' if offline else '.'))


def _download_url(url: str) -> str:
    """The cached copy of ``url``, downloading it first (same folder and file name as MMEngine)."""
    from urllib.error import URLError
    from urllib.parse import urlparse

    from torch.hub import download_url_to_file, get_dir
    folder = os.path.join(get_dir(), 'checkpoints')
    cached = os.path.join(folder, os.path.basename(urlparse(url).path))
    if not os.path.isfile(cached):
        os.makedirs(folder, exist_ok=True)
        try:
            download_url_to_file(url, cached, progress=False)
        except (URLError, OSError) as err:
            raise CheckpointNameError(f'{url}: download failed ({err}); nothing cached at '
                                      f'{cached}') from err
    return cached


def load_from_name(filename: str, map_location=None):  # MMEngine logs "by name backend"
    """MMEngine checkpoint loader for the names above: resolve, then the local loader reads."""
    from mmengine.runner.checkpoint import CheckpointLoader
    path = os.path.abspath(resolve_checkpoint(filename))  # absolute: matches no name prefix
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path, device='cpu')
    return CheckpointLoader.load_checkpoint(path, map_location=map_location)


def register_checkpoint_schemes() -> None:
    """Let MMEngine's ``load_from`` / ``load_checkpoint`` take checkpoint names.

    Process-wide (MMEngine's CheckpointLoader is a class-level table), so it is an explicit
    call: the tools make it. http(s) is taken over too, so URLs are read by the local loader
    (``weights_only=True`` when pe_dense's safe loader is installed) instead of MMEngine's
    ``torch.load(weights_only=False)``.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes=list(HF_PREFIXES + (TIMM_PREFIX, ) + URL_PREFIXES),
                                     loader=load_from_name, force=True)


__all__ = ['CheckpointNameError', 'is_checkpoint_name', 'parse_hub_name', 'resolve_checkpoint',
           'load_from_name', 'register_checkpoint_schemes']
