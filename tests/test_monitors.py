"""Early stopping and the plateau schedule continue across --resume (training.monitors)."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from fer_edge.training import monitors  # noqa: E402

#: validation accuracies with ties, plateaus, gains below the plateau schedule's min_delta (0.36005) and
#: late improvements (ties are not improvements)
VALS = [0.30, 0.35, 0.35, 0.34, 0.33, 0.36, 0.36005, 0.36, 0.36, 0.37, 0.36, 0.35, 0.34, 0.34, 0.34, 0.33, 0.32]


def _model(lr: float):
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return m


def _feed(cb, model, vals, first_epoch=0):
    """Keras' callback protocol for len(vals) epochs; -> the epoch (0-based) that stopped training, or None."""
    cb.set_model(model)
    cb.on_train_begin()
    for e, v in enumerate(vals, start=first_epoch):
        cb.on_epoch_end(e, {"val_accuracy": v})
        if model.stop_training:
            return e
    return None


def _lr(model) -> float:
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


@pytest.mark.parametrize("patience", [3, 6])
def test_replay_matches_keras_callbacks(patience):
    """replay() holds the counters Keras' own callbacks reach on the same accuracies (and the same rate)."""
    for n in range(1, len(VALS) + 1):
        es = monitors.early_stopping(patience, None)
        pl = monitors.plateau(patience, None)
        m1, m2 = _model(1e-3), _model(1e-3)
        if _feed(es, m1, VALS[:n]) is not None:
            break
        _feed(pl, m2, VALS[:n])
        r = monitors.replay(VALS[:n], patience, 1e-3)
        assert (r.stop_best, r.stop_wait) == (pytest.approx(es.best), es.wait)
        assert (r.plateau_best, r.plateau_wait) == (pytest.approx(pl.best), pl.wait)
        assert r.lr == pytest.approx(_lr(m2))


@pytest.mark.parametrize("cut", [2, 5, 8, 11, 12])
def test_resumed_monitors_stop_and_decay_as_uninterrupted(cut):
    """An interrupted run resumed from its history stops at the epoch, and reaches the learning rate, that
    the uninterrupted run does; fresh callbacks (what Keras does on a second fit) stop later when the
    interruption came after the best epoch (index 9)."""
    patience = 4
    whole_es, whole_pl = monitors.early_stopping(patience, None), monitors.plateau(patience, None)
    m_es, m_pl = _model(1e-3), _model(1e-3)
    stop = _feed(whole_es, m_es, VALS)
    _feed(whole_pl, m_pl, VALS[:stop + 1])
    assert stop is not None and stop > cut

    done = monitors.replay(VALS[:cut], patience, 1e-3)
    r_es, r_pl = monitors.early_stopping(patience, done), monitors.plateau(patience, done)
    m2_es, m2_pl = _model(1e-3), _model(done.lr)  # the optimizer resumes at the rate it had reached
    assert _feed(r_es, m2_es, VALS[cut:], first_epoch=cut) == stop
    _feed(r_pl, m2_pl, VALS[cut:stop + 1], first_epoch=cut)
    assert _lr(m2_pl) == pytest.approx(_lr(m_pl))

    fresh = _feed(monitors.early_stopping(patience, None), _model(1e-3), VALS[cut:], first_epoch=cut)
    assert (fresh == stop) == (cut <= 9)


def test_val_history_reads_the_last_row_of_each_epoch(tmp_path):
    from fer_edge.rundir import RunDir
    from fer_edge.training.train import _val_history

    run = RunDir(tmp_path)
    assert _val_history(run, 0, 3) == []  # no history.csv
    run.history.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n"
                           "0,0.1,2,0.30,2\n1,0.1,2,0.31,2\n2,0.1,2,0.50,2\n2,0.1,2,0.32,2\n")
    assert _val_history(run, 0, 3) == [0.30, 0.31, 0.32]  # epoch 2 was redone after a crash
    assert _val_history(run, 1, 3) == [0.31, 0.32] and _val_history(run, 0, 4) == []
    # the one reader behind this and the run's curves.png: one row per epoch, in epoch order
    assert [(r["epoch"], r["val_accuracy"]) for r in run.read_history()] == [(0, 0.30), (1, 0.31), (2, 0.32)]
    run.history.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.1,2,0.30,2\n1,0.1,2,nan?,2\n")
    assert run.read_history() == [] and _val_history(run, 0, 1) == []  # damaged: nothing is trusted
    run.history.write_text("epoch,accuracy,loss\n0,0.1,2\n")  # trained without validation
    assert _val_history(run, 0, 1) == []
