"""The batch arithmetic: labeled + extra patches per step, and the labeled share of the extra ones."""

import pytest

from brats_ssl import config as config_lib
from brats_ssl.batch_mix import batch_counts, extra_counts, stage_counts
from brats_ssl.errors import BadInputError


def test_extra_patches_are_added_to_the_full_labeled_batch():
    assert batch_counts(2, 1.0) == (2, 2) and batch_counts(4, 0.5) == (4, 2) and batch_counts(2, 0.0) == (2, 0)
    assert batch_counts(2, 1.0, legacy_fraction=0.5) == (1, 1)  # runs made before: taken out of the batch


def test_labeled_share_of_the_extra_patches():
    assert extra_counts(2, 0.0) == (0, 2)
    assert extra_counts(2, 0.5) == (1, 1) and extra_counts(4, 0.25) == (1, 3) and extra_counts(4, 0.6) == (2, 2)


def test_the_stages_of_ours_and_its_controls_hold_the_same_labeled_batch():
    assert stage_counts("ours", 2, 1.0, None, 0.5) == (2, 1, 1) and stage_counts("ours", 2, 1.0, None, 0.0) == (2, 0, 2)
    assert stage_counts("ours-student-control", 2, 1.0, None, 0.5) == (2, 2, 0)
    assert stage_counts("ours-control", 2, 1.0, None, 0.5) == (2, 0, 0)
    # runs made before: ours' pseudo-labeled patch came out of the batch, the control kept all of it
    assert stage_counts("ours", 2, 1.0, 0.5, 0.0) == (1, 0, 1)
    assert stage_counts("ours-control", 2, 1.0, 0.5, 0.0) == (2, 0, 0)
    with pytest.raises(ValueError, match="bcp: not a staged method"):
        stage_counts("bcp", 2, 1.0, None, 0.5)


@pytest.mark.parametrize(("extra", "share", "named"), [(2, 0.2, "0.5"), (2, 0.9, "0.5"), (1, 0.5, "none")])
def test_a_share_that_rounds_to_none_or_all_is_refused(extra, share, named):
    with pytest.raises(BadInputError, match=rf"ssl.labeled_extra_share={share:g}: .*shares that keep both: {named}"):
        extra_counts(extra, share)


def test_the_settings_refuse_such_a_share_before_any_run():
    config = config_lib.preset("tiny")
    config.method = "ours"
    accepted = config_lib.apply_overrides(config, ["ssl.unlabeled_ratio=2", "ssl.labeled_extra_share=0.75"])
    assert accepted.ssl.labeled_extra_share == 0.75  # 3 of 4 extra patches
    with pytest.raises(BadInputError, match="labeled_extra_share=0.1"):  # none of the 4
        config_lib.apply_overrides(config, ["ssl.labeled_extra_share=0.1"])


def test_the_default_share_is_refused_for_ours_only_where_its_batch_cannot_give_it():
    """ours' default (0.5) cannot split one extra patch: ours says so and names the way out; the other
    methods, which never read the share, take the same batch."""
    config = config_lib.preset("tiny")
    assert config.ssl.labeled_extra_share == 0.5
    for method in ("supervised", "bcp", "ua-mt", "ours-control", "ours-student-control"):
        config.method = method
        assert config_lib.apply_overrides(config, ["ssl.unlabeled_ratio=0.5"]).ssl.unlabeled_ratio == 0.5
    config.method = "ours"
    with pytest.raises(BadInputError, match=r"of 1 extra patch.*or ssl.labeled_extra_share=0 "):
        config_lib.validate(config)
    assert config_lib.apply_overrides(config, ["ssl.labeled_extra_share=0"]).ssl.labeled_extra_share == 0


def test_runs_made_before_the_share_was_a_setting_keep_all_their_extra_patches_pseudo_labeled(tmp_path):
    import yaml

    saved = config_lib.preset("tiny").to_dict()
    saved["method"] = "ours"
    del saved["ssl"]["labeled_extra_share"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert config_lib.load(tmp_path / "config.yaml", saved_run=True).ssl.labeled_extra_share == 0.0
    assert config_lib.load(tmp_path / "config.yaml").ssl.labeled_extra_share == 0.5  # a --config file: today's
