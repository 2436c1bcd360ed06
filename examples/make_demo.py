"""Write an example TF1 checkpoint directory for ``make demo`` (needs TensorFlow).

    python examples/make_demo.py build/demo

Trains a small two-layer network for a few Adam steps and saves three checkpoints with a
``.meta`` graph and a ``checkpoint`` state file, the layout a TF1 training job leaves behind.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(out_dir: str) -> None:
    import numpy as np
    import tensorflow as tf

    tf1 = tf.compat.v1
    os.makedirs(out_dir, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(0)
        x = tf1.placeholder(tf.float32, [None, 16], name="x")
        y = tf1.placeholder(tf.float32, [None, 1], name="y")
        step = tf1.train.get_or_create_global_step()
        with tf1.variable_scope("model"):
            with tf1.variable_scope("dense0"):
                w0 = tf1.get_variable("kernel", [16, 32])
                b0 = tf1.get_variable("bias", [32], initializer=tf1.zeros_initializer())
            with tf1.variable_scope("dense1"):
                w1 = tf1.get_variable("kernel", [32, 1])
                b1 = tf1.get_variable("bias", [1], initializer=tf1.zeros_initializer())
        hidden = tf.nn.relu(tf.matmul(x, w0) + b0)
        pred = tf.identity(tf.matmul(hidden, w1) + b1, name="prediction")
        loss = tf.reduce_mean(tf.square(pred - y))
        train = tf1.train.AdamOptimizer(1e-2).minimize(loss, global_step=step)
        saver = tf1.train.Saver(max_to_keep=3)
        rng = np.random.default_rng(0)
        data_x = rng.standard_normal((64, 16)).astype(np.float32)
        data_y = data_x.sum(axis=1, keepdims=True)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for i in range(1, 301):
                sess.run(train, {x: data_x, y: data_y})
                if i % 100 == 0:
                    saver.save(sess, os.path.join(out_dir, "model.ckpt"), global_step=step)
    print(f"wrote checkpoints to {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/demo")
