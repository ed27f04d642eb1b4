import polars as pl

from lumina_pipeline.storage.frames import read_frame, stage

SCHEMA = {"id": pl.Int64, "name": pl.String, "raw": pl.Binary, "score": pl.Float64, "kept": pl.Boolean}


def test_a_frame_survives_copy_in_and_out_byte_for_byte(engine):
    frame = pl.DataFrame(
        [
            (1, 'Café, "quoted"', b"Gr\xfc\xdfe\x00.jpg", 0.5, True),
            (2, None, b"", None, None),
            (3, "x\ny", b"\xff", -1.25, False),
        ],
        schema=SCHEMA,
        orient="row",
    )
    with engine.begin() as connection:
        stage(connection, "roundtrip", frame)
        back = read_frame(connection, "SELECT * FROM roundtrip ORDER BY id", {}, SCHEMA)
    assert back.to_dicts() == frame.to_dicts()
