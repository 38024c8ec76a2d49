# gnuplot weights/logs/full-v16k-geglu-2026-12-07/curves.gp (from the
# repository root): validation loss of the weight average in nats per byte
# (the loss on the first 65,536 tokens of valid.txt x 65,536 / the bytes
# those tokens cover: 255,274 with the shipped 8,192 vocabulary, 277,478
# with 16,384) against elapsed minutes, for the shipped GEGLU run
# (full-geglu-2026-12-07) and this run (vocabulary 16,384). Right: the
# difference at equal elapsed time (columns 12 and 18 of diff.sh's output).
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-v16k-geglu-2026-12-07/curves.png'
set datafile separator ','
set multiplot layout 1,2
set xlabel 'elapsed minutes'
set grid
set key top right
set title 'validation loss of the weight average, per byte'
set ylabel 'nats per byte'
set yrange [0.88:1.25]
plot 'weights/logs/full-geglu-2026-12-07/train.csv' every ::1 using ($6/60):($7*65536/255274) with lines lw 2 lc 1 title 'shipped: geglu, vocabulary 8,192', \
     'weights/logs/full-v16k-geglu-2026-12-07/train.csv' every ::1 using ($6/60):($7*65536/277478) with lines lw 2 lc 2 title 'geglu, vocabulary 16,384'
set title 'vocabulary 16,384 minus the shipped run, equal time'
set ylabel 'nats per byte'
set yrange [-0.05:0.01]
set datafile separator whitespace
plot '< sh weights/logs/full-v16k-geglu-2026-12-07/diff.sh' using 1:12 with lines lw 2 lc 2 title 'average', \
     '' using 1:18 with lines lw 1 dt 2 lc 2 title 'parameters', \
     0 with lines lc 0 notitle
unset multiplot
