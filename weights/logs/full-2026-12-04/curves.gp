# gnuplot weights/logs/full-2026-12-04/curves.gp (from the repository root):
# validation loss (nats/token, first 65,536 tokens of valid.txt for the
# full-data runs, 32,768 for the subset search) against training tokens.
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-2026-12-04/curves.png'
set datafile separator ','
set multiplot layout 1,2
set title 'full train.txt (2.7M tokens): validation loss'
set xlabel 'training tokens (millions)'
set ylabel 'valid loss'
set grid
set key top right
set yrange [3.5:5.5]
plot 'weights/logs/synthesizer-wt2-train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.4 title 'shipped: dropout 0.1, 1 thread, 95 min', \
     'weights/logs/full-2026-12-04/train.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.4 title 'dropout 0.2, 2 threads, 90 min'
set title 'first eighth of train.txt (333k tokens), 13 min each: validation loss'
set yrange [4.7:6.5]
plot for [r in 'd01 d02 d03 d03-384x4'] 'weights/logs/search-2026-12-04/'.r.'.csv' every ::1 using ($1*2048/1e6):3 with linespoints pt 7 ps 0.4 title r
unset multiplot
