"""Write the student of a SpatialAligner / SpatialDistiller checkpoint as an official PE file.

    python tools/export_aligned.py work_dirs/pe_spatial_align_g14_448/iter_100000.pth OUT.pt

The output has the official vision-tower key names and no pooling head, mask token, projection
or teachers: ``PE(arch='PE-Spatial-G14-448', init_cfg=dict(type='Pretrained', checkpoint=OUT))``.
"""
import argparse

from pe_dense.models.aligners import export_student


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('checkpoint')
    p.add_argument('out')
    args = p.parse_args()
    sd = export_student(args.checkpoint, args.out)
    print(f'wrote {args.out}: {len(sd)} tensors, '
          f'{sum(v.numel() for v in sd.values()) / 1e6:.2f}M parameters')


if __name__ == '__main__':
    main()
