import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import ExifTags, Image

from lumina_pipeline.analysis.metadata import encode_geohash, read_exif_metadata

latitudes = st.floats(-90, 90, allow_nan=False)
longitudes = st.floats(-180, 180, allow_nan=False, exclude_max=True)


def test_geohash_of_a_known_place():
    assert encode_geohash(57.64911, 10.40744, 11) == "u4pruydqqvj"  # Niemeyer's own example


@given(latitudes, longitudes)
def test_coarser_geohash_cells_are_prefixes(latitude, longitude):
    assert encode_geohash(latitude, longitude, 4) == encode_geohash(latitude, longitude, 8)[:4]


def test_missing_and_malformed_tags_give_none():
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "  Canon\x00\x00"
    exif[ExifTags.Base.DateTime] = "0000:00:00 00:00:00"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] = (1, 2)
    fields = read_exif_metadata(exif)
    assert fields["camera_make"] == "Canon"
    assert fields["captured_at"] is None and fields["captured_at_source"] is None
    assert fields["latitude"] is None and fields["longitude"] is None


def test_a_receiver_without_a_fix_gives_no_position(tmp_path):
    def position(status: str | None, latitude: tuple, longitude: tuple) -> tuple:
        exif = Image.Exif()
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps.update({ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: latitude,
                    ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: longitude})
        if status:
            gps[ExifTags.GPS.GPSStatus] = status
        Image.new("RGB", (8, 8)).save(tmp_path / "fix.jpg", exif=exif)  # as a camera writes it, read back
        fields = read_exif_metadata(Image.open(tmp_path / "fix.jpg").getexif())
        return fields["latitude"], fields["longitude"]

    assert position(None, (0, 0, 0), (0, 0, 0)) == (None, None)
    assert position("V", (48, 51, 30), (2, 17, 40)) == (None, None)
    assert position("A", (48, 51, 30), (2, 17, 40)) == pytest.approx((48.858333, 2.294444))
