import java.util.stream.IntStream;

public class Main {
    public static void main(String[] args) {
        int total = IntStream.rangeClosed(1, 10).map(i -> i * i).sum();
        System.out.println("hello from java " + total);
    }
}
