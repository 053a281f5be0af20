"""Make ``musicnn_reference.npz``: outputs of the ORIGINAL musicnn checkpoints, computed with TensorFlow.

genrecraft converts these checkpoints to frozen graphs without TensorFlow (``dataset_builder/label/tfproto.py``)
and checks every conversion against this file. Run it once, in a throwaway environment that has TensorFlow
(it is not a genrecraft dependency):

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn && unzip -q /tmp/musicnn/*.whl -d /tmp/musicnn
    /tmp/tfvenv/bin/python make_musicnn_reference.py /tmp/musicnn/musicnn

Input: 2 patches of log-mel values drawn uniformly in [0, 3) from numpy's default_rng(1234), stored with the
outputs so the check does not depend on numpy's generator.
"""

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

tf.compat.v1.disable_eager_execution()


def main(musicnn_dir: str) -> None:
    patches = np.random.default_rng(1234).uniform(0.0, 3.0, size=(2, 187, 96)).astype(np.float32)
    out = {"input": patches}
    for name in ("MSD_musicnn", "MTT_musicnn"):
        # The full meta graph (with its training ops) no longer imports in TF 2.x; import only the sub-graph the
        # outputs need, with TensorFlow's own tools, and assign the checkpoint values to its variables.
        prefix = str(Path(musicnn_dir) / name) + "/"
        meta = tf.compat.v1.MetaGraphDef()
        meta.ParseFromString(Path(prefix + ".meta").read_bytes())
        sub = tf.compat.v1.graph_util.extract_sub_graph(meta.graph_def, ["model/Sigmoid", "model/dense/BiasAdd"])
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
        graph = tf.Graph()
        with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
            tf.compat.v1.import_graph_def(sub, name="")
            for node in sub.node:
                if node.op == "VariableV2":
                    ref = graph.get_tensor_by_name(node.name + ":0")
                    sess.run(tf.compat.v1.assign(ref, reader.get_tensor(node.name)))
            tags, embedding = sess.run(["model/Sigmoid:0", "model/dense/BiasAdd:0"],
                                       feed_dict={"model/Placeholder:0": patches, "model/Placeholder_2:0": False})
        out[f"{name}/tags"] = tags
        out[f"{name}/embedding"] = embedding
        print(name, tags.shape, embedding.shape, float(tags.mean()))
    np.savez_compressed(Path(__file__).resolve().parent / "musicnn_reference.npz", **out)


if __name__ == "__main__":
    main(sys.argv[1])
