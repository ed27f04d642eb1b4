import polars as pl

from lumina_pipeline.analysis.stacks import FILES_SCHEMA, find_stacks


def file(id_, path, kind="image", *, at="2022-08-14T14:14:59", offset=None, duration=None, clip=None, root="r",
         source="DateTimeOriginal", camera=None):
    return {"id": id_, "source_root": root, "path": path, "kind": kind, "checksum": f"c{id_}", "captured_at": at,
            "captured_at_source": source, "capture_offset": offset, "duration_seconds": duration,
            "content_identifier": clip, "camera_model": camera}


def stacks_of(*files) -> set[tuple[str, int, tuple[int, ...]]]:
    """(kind, primary, members) of each stack found."""
    found = find_stacks(pl.DataFrame(list(files), schema=FILES_SCHEMA))
    members = found.members.group_by("group_key").agg(pl.col("id").sort())
    stacks = found.groups.join(members, on="group_key")
    return {(kind, choice, tuple(ids)) for _, kind, choice, ids in stacks.iter_rows()}


def test_a_raw_and_its_jpeg_are_one_stack_whatever_the_case_and_the_jpeg_is_primary():
    assert stacks_of(file(1, "2022/DSC_1.NEF", "raw"), file(2, "2022/dsc_1.jpg")) == {("raw_jpeg", 2, (1, 2))}


def test_a_raw_and_a_jpeg_taken_apart_or_in_other_folders_are_not_a_stack():
    assert stacks_of(file(1, "a/DSC_1.NEF", "raw"), file(2, "a/DSC_1.JPG", at="2022-08-14T14:15:01")) == set()
    assert stacks_of(file(1, "a/DSC_1.NEF", "raw"), file(2, "b/DSC_1.JPG")) == set()
    assert stacks_of(file(1, "a/DSC_1.NEF", "raw", root="x"), file(2, "a/DSC_1.JPG", root="y")) == set()


def test_an_unreadable_raw_pairs_by_folder_and_stem():
    assert stacks_of(file(1, "a/DSC_1.dng", "raw", at=None), file(2, "a/DSC_1.JPG")) == {("raw_jpeg", 2, (1, 2))}


def test_a_raw_whose_only_date_is_when_it_was_written_pairs_by_folder_and_stem():
    written = file(1, "a/DSC_1.DNG", "raw", at="2023-09-04T18:30:00", source="DateTime")
    assert stacks_of(written, file(2, "a/DSC_1.JPG")) == {("raw_jpeg", 2, (1, 2))}


def test_a_raw_and_a_jpeg_of_two_camera_models_are_not_a_stack_though_the_raw_has_no_shutter_time():
    written = file(1, "merged/IMG_2.DNG", "raw", at="2019-09-21T10:00:00", source="DateTime", camera="PENTAX K-3")
    assert stacks_of(written, file(2, "merged/IMG_2.JPG", camera="COOLPIX P6000")) == set()
    assert stacks_of(written, file(2, "merged/IMG_2.JPG", camera="Pentax K-3")) == {("raw_jpeg", 2, (1, 2))}


def test_a_jpeg_without_a_capture_time_is_not_the_twin_of_a_dated_raw():
    assert stacks_of(file(1, "a/DSC_1.CR2", "raw"), file(2, "a/DSC_1.JPG", at=None)) == set()


def test_a_stack_holds_one_file_of_each_role_and_a_second_import_stays_apart():
    shot = [file(1, "a/IMG_30.CR2", "raw"), file(2, "a/IMG_30.JPG"), file(3, "a/IMG_30.xmp", "sidecar", at=None)]
    copies = [file(4, "a/img_30.cr2", "raw"), file(5, "a/img_30.jpg")]
    assert stacks_of(*shot, *copies) == {("raw_jpeg", 2, (1, 2, 3))}
    converted = [file(6, "p/IMG_2.HEIC"), file(7, "p/IMG_2.JPG"), file(8, "p/IMG_2.MOV", "video", duration=2.5)]
    assert stacks_of(*converted) == {("live_photo", 6, (6, 8))}


def test_a_still_and_its_short_clip_are_a_live_photo():
    still, clip = file(1, "p/IMG_2.HEIC"), file(2, "p/IMG_2.MOV", "video", at="2022-08-14T14:15:00.500", duration=2.5)
    assert stacks_of(clip, still) == {("live_photo", 1, (1, 2))}


def test_times_compare_in_utc_when_both_files_record_their_offset():
    still = file(1, "p/IMG_2.JPG", offset="+02:00")
    clip = file(2, "p/IMG_2.MOV", "video", at="2022-08-14T12:14:59", offset="+00:00", duration=2.5)
    assert stacks_of(still, clip) == {("live_photo", 1, (1, 2))}


def test_a_still_of_the_clock_alone_and_a_clip_of_apples_local_creation_date_compare_by_their_clocks():
    still = file(1, "p/IMG_6.JPG", at="2023-07-04T18:00:00.250")  # an iPhone 8's, its identifier stripped
    clip = file(2, "p/IMG_6.MOV", "video", at="2023-07-04T17:59:59", offset="-07:00", duration=2.8,
                source="com.apple.quicktime.creationdate")
    assert stacks_of(still, clip) == {("live_photo", 1, (1, 2))}


def test_a_still_of_the_clock_alone_and_a_clip_in_utc_pair_only_by_apples_identifier():
    still = file(1, "p/IMG_3.JPG", at="2022-08-14T08:15:01")  # 10:15 at +02:00, the clip's instant
    clip = file(2, "p/IMG_3.MOV", "video", at="2022-08-14T08:15:00", offset="+00:00", duration=3.0)
    assert stacks_of(still, clip) == set()
    assert stacks_of({**still, "content_identifier": "X"}, {**clip, "content_identifier": "X"}) == {
        ("live_photo", 1, (1, 2))}


def test_a_long_clip_or_a_clip_hours_apart_is_not_a_live_photo_unless_apple_says_so():
    long_clip = file(2, "p/IMG_2.MOV", "video", duration=30.0)
    later = file(2, "p/IMG_2.MOV", "video", at="2022-08-14T18:00:00", duration=2.5)
    assert stacks_of(file(1, "p/IMG_2.HEIC"), long_clip) == set()
    assert stacks_of(file(1, "p/IMG_2.HEIC"), later) == set()
    same_identifier = file(2, "p/IMG_2.MOV", "video", at="2022-08-14T18:00:00", duration=2.5, clip="X")
    assert stacks_of(file(1, "p/IMG_2.HEIC", clip="X"), same_identifier) == {("live_photo", 1, (1, 2))}


def test_sidecars_join_their_photos_stack():
    shot = [file(1, "a/DSC_1.CR2", "raw"), file(2, "a/DSC_1.JPG")]
    sidecars = [file(3, "a/DSC_1.xmp", "sidecar", at=None), file(4, "a/DSC_1.CR2.xmp", "sidecar", at=None)]
    assert stacks_of(*shot, *sidecars) == {("raw_jpeg", 2, (1, 2, 3, 4))}
    nikon = [file(1, "a/DSC_2.NRW", "raw"), file(2, "a/DSC_2.JPG"), file(3, "a/DSC_2.NRW.xmp", "sidecar", at=None)]
    assert stacks_of(*nikon) == {("raw_jpeg", 2, (1, 2, 3))}


def test_a_photo_or_video_alone_makes_a_stack_with_its_sidecars_and_a_sidecar_alone_none():
    sidecars = [file(3, "a/DSC_1.xmp", "sidecar", at=None), file(4, "a/DSC_1.JPG.xmp", "sidecar", at=None)]
    assert stacks_of(file(2, "a/DSC_1.JPG"), *sidecars) == {("with_sidecar", 2, (2, 3, 4))}
    assert stacks_of(file(1, "a/DSC_1.NEF", "raw"), sidecars[0]) == {("with_sidecar", 1, (1, 3))}
    clip = file(5, "v/MVI_7.MOV", "video", duration=40.0)
    assert stacks_of(clip, file(6, "v/MVI_7.THM", "sidecar", at=None)) == {("with_sidecar", 5, (5, 6))}
    assert stacks_of(*sidecars, file(7, "b/DSC_1.JPG")) == set()
    # of two photos of the stem that are no stack, a sidecar goes with the one it names, else the first still
    named = file(5, "e/IMG_5.png.xmp", "sidecar", at=None)
    assert stacks_of(file(1, "e/IMG_5.jpg"), file(2, "e/IMG_5.png"), named) == {("with_sidecar", 2, (2, 5))}
    assert stacks_of(file(9, "a/DSC_1.png"), file(8, "a/DSC_1.NEF", "raw", at=None), *sidecars) == {
        ("with_sidecar", 8, (3, 8))  # DSC_1.JPG.xmp names a file that is not there: it describes neither
    }
    darktable = file(6, "a/DSC_1.nef.xmp", "sidecar", at=None)
    assert stacks_of(file(9, "a/DSC_1.png"), file(8, "a/DSC_1.NEF", "raw", at=None), darktable) == {
        ("with_sidecar", 8, (6, 8))
    }


def test_a_raw_jpeg_and_clip_of_one_shot_are_one_live_stack():
    shot = [file(1, "p/IMG_3.DNG", "raw"), file(2, "p/IMG_3.HEIC"), file(3, "p/IMG_3.MOV", "video", duration=2.0)]
    assert stacks_of(*shot) == {("live_photo", 2, (1, 2, 3))}


def test_a_sidecar_named_by_the_stem_alone_goes_with_the_file_its_kind_describes():
    raw, still = file(1, "m/IMG_3.dng", "raw", camera="NIKON Z 9"), file(2, "m/IMG_3.JPG", camera="iPhone 8")
    lightroom, apple = file(3, "m/IMG_3.xmp", "sidecar", at=None), file(4, "m/IMG_3.AAE", "sidecar", at=None)
    assert stacks_of(raw, still, lightroom, apple) == {("with_sidecar", 1, (1, 3)), ("with_sidecar", 2, (2, 4))}
    original = file(5, "m/IMG_O3.AAE", "sidecar", at=None)  # iOS: the adjustments of the original
    assert stacks_of(still, apple, original) == {("with_sidecar", 2, (2, 4, 5))}


def test_darktables_sidecar_of_a_second_version_goes_with_its_photo():
    pair = [file(1, "a/IMG_1.CR2", "raw"), file(2, "a/IMG_1.JPG")]
    versions = [file(3, "a/IMG_1.CR2.xmp", "sidecar", at=None), file(4, "a/IMG_1_01.CR2.xmp", "sidecar", at=None)]
    assert stacks_of(*pair, *versions) == {("raw_jpeg", 2, (1, 2, 3, 4))}
    own = [file(5, "a/DSC_01.JPG"), file(6, "a/DSC_01.JPG.xmp", "sidecar", at=None)]  # a photo of that name
    assert stacks_of(*own, file(7, "a/DSC.JPG")) == {("with_sidecar", 5, (5, 6))}


def test_google_takeouts_json_files_go_with_the_photo_they_describe():
    takeout = [
        file(1, "t/IMG_1.jpg"), file(2, "t/IMG_1.jpg.json", "sidecar", at=None),
        file(3, "t/IMG_1(1).jpg"), file(4, "t/IMG_1.jpg(1).json", "sidecar", at=None),
        file(5, "t/IMG_2.HEIC"), file(6, "t/IMG_2.HEIC.supplemental-metadata.json", "sidecar", at=None),
        file(7, "t/PXL_20230101_101010123.jpg"), file(8, "t/PXL_20230101_101010123.jpg.supplemental-met.json",
                                                       "sidecar", at=None),
        file(9, "t/metadata.json", "sidecar", at=None),  # an album's: no photo of that name
        file(10, "t/IMG_2(1).HEIC"), file(11, "t/IMG_2.HEIC.supplemental-metadata(1).json", "sidecar", at=None),
    ]
    assert stacks_of(*takeout) == {("with_sidecar", photo, (photo, photo + 1)) for photo in (1, 3, 5, 7, 10)}
    still, clip = file(1, "u/IMG_3.HEIC"), file(2, "u/IMG_3.MP4", "video", at="2022-08-14T18:00:00", duration=2.5)
    clips = file(3, "u/IMG_3.MP4.supplemental-metadata.json", "sidecar", at=None)  # the clip's, no Live Photo
    assert stacks_of(still, clip, clips) == {("with_sidecar", 2, (2, 3))}
