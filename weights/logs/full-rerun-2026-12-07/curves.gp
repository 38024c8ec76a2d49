# gnuplot weights/logs/full-rerun-2026-12-07/curves.gp (from the repository
# root): the shipped command run twice, 100 minutes on both cores each: the
# shipped model's run (full-geglu-2026-12-07, 16,304 steps) and this run on a
# faster machine (more steps in the same time). Left: validation loss of the
# weight average (nats per token, first 65,536 tokens of valid.txt) against
# tokens; right: this run minus the shipped run at equal fractions of each
# schedule (diff.sh).
set terminal pngcairo size 1100,480 font ',10'
set output 'weights/logs/full-rerun-2026-12-07/curves.png'
set datafile separator ','
set multiplot layout 1,2
set grid
set key top right
set title 'validation loss of the weight average'
set xlabel 'tokens (millions)'
set ylabel 'valid loss'
set yrange [3.5:5.0]
plot 'weights/logs/full-geglu-2026-12-07/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 lc 1 title 'shipped run (slower machine)', \
     'weights/logs/full-rerun-2026-12-07/train.csv' every ::1 using ($1*2048/1e6):7 with lines lw 2 lc 2 title 'same command, faster machine'
set title 'difference from the shipped run at equal fractions of the schedule'
set xlabel 'fraction of the schedule'
set ylabel 'valid loss - shipped run (nats)'
set yrange [-0.1:0.02]
set datafile separator whitespace
# diff.sh's columns: 3 "(fraction", 14 the average's difference, 20 the parameters'
diffs = '< sh weights/logs/full-rerun-2026-12-07/diff.sh'
plot diffs using (real(substr(strcol(3), 2, 99))):14 with lines lw 2 lc 2 title 'average', \
     '' using (real(substr(strcol(3), 2, 99))):20 with lines lw 1 dt 2 lc 2 title 'parameters', \
     0 with lines lc 0 notitle
unset multiplot
